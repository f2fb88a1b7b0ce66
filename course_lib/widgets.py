"""Interactive sampling controls (introduced in notebook 08).

Only ipywidgets API common to versions 7 and 8 is used (Google Colab still ships 7).
"""
import html

import ipywidgets as widgets
import torch

from .sampling import generate_text


def temperature_explorer(model, tokenizer, prompt, max_new_tokens=30, samples=3, seed=0):
    """Sliders for temperature, top-k and top-p; the text below is regenerated on release (notebook 08).

    Returns the widget (a VBox). Its controls are also reachable as attributes for scripting and
    tests: ``.temperature``, ``.top_k`` (0 = off), ``.top_p``, ``.seed``, and ``.text`` (an HTML
    widget whose ``value`` holds the generated continuations).
    """
    style = {"description_width": "initial"}
    temperature = widgets.FloatSlider(value=1.0, min=0.0, max=3.0, step=0.05, description="temperature",
                                      continuous_update=False, style=style)
    top_k = widgets.IntSlider(value=0, min=0, max=len(tokenizer), step=1, description="top-k (0 = off)",
                              continuous_update=False, style=style)
    top_p = widgets.FloatSlider(value=1.0, min=0.05, max=1.0, step=0.05, description="top-p",
                                continuous_update=False, style=style)
    seed_box = widgets.IntSlider(value=seed, min=0, max=99, description="seed", continuous_update=False, style=style)
    text = widgets.HTML()
    unknown = tokenizer.unknown_words(prompt)
    note = f"<br><i>not in the vocabulary, read as &lt;unk&gt;: {html.escape(', '.join(unknown))}</i>" if unknown else ""

    def regenerate(_change=None):
        generator = torch.Generator().manual_seed(seed_box.value)
        lines = []
        for _ in range(samples):
            sentence = generate_text(model, tokenizer, prompt, max_new_tokens, temperature=temperature.value,
                                     top_k=top_k.value or None, top_p=top_p.value, generator=generator)
            lines.append(f"<li>{html.escape(sentence)}</li>")
        mode = "greedy (temperature 0)" if temperature.value == 0 else f"temperature {temperature.value:.2f}"
        text.value = (f"<b>prompt:</b> {html.escape(prompt)}{note}<br><b>{mode}</b>, "
                      f"{samples} samples:<ul>{''.join(lines)}</ul>")

    for control in (temperature, top_k, top_p, seed_box):
        control.observe(regenerate, names="value")
    regenerate()
    box = widgets.VBox([widgets.HBox([temperature, top_k]), widgets.HBox([top_p, seed_box]), text])
    box.temperature, box.top_k, box.top_p, box.seed, box.text = temperature, top_k, top_p, seed_box, text
    return box


def chat_widget(model, tokenizer, system=None, max_new_tokens=60, temperature=0.0, top_p=None,
                repetition_penalty=1.0, seed=0):
    """A chat box: type a message, press Enter (or Send), watch the reply stream in (notebook 15).

    The conversation is kept and sent as history with every message; turns that no longer fit the
    model's context are dropped, oldest first, and the status line says so. "Reset" starts over.
    Only ipywidgets API common to versions 7 and 8 is used. Returns the widget (a VBox); its parts
    are attributes for scripting and tests: ``.message`` (the Text box), ``.send``, ``.reset``
    (Buttons), ``.conversation`` and ``.status`` (HTML), ``.history`` (the turns so far), and
    ``.say(text)`` sends a message as if typed.
    """
    from .chat import stream_chat

    start = [{"role": "system", "content": system}] if system else []
    message = widgets.Text(placeholder="Type a message and press Enter", continuous_update=False,
                           layout=widgets.Layout(width="60%"))
    send, reset = widgets.Button(description="Send"), widgets.Button(description="Reset")
    conversation, status = widgets.HTML(), widgets.HTML()
    generator = torch.Generator().manual_seed(seed)
    box = widgets.VBox([conversation, widgets.HBox([message, send, reset]), status])
    box.history = list(start)

    def show(pending=None, reply=""):
        turns = box.history[len(start):] + ([{"role": "user", "content": pending}] if pending is not None else [])
        lines = [f"<div class='chat-{t['role']}'><b>{'you' if t['role'] == 'user' else 'bot'}:</b> "
                 f"{html.escape(t['content'])}</div>" for t in turns]
        if pending is not None:
            lines.append(f"<div class='chat-assistant chat-streaming'><b>bot:</b> {html.escape(reply)}&#9612;</div>")
        conversation.value = "".join(lines) or "<i>no messages yet</i>"

    def say(text):
        text = text.strip()
        if not text:
            return
        try:
            stream = stream_chat(model, tokenizer, box.history, text, max_new_tokens, temperature, None, top_p,
                                 repetition_penalty, generator)
        except ValueError as error:  # a character the tokenizer cannot encode, a message too long for the context
            status.value = f"<span style='color:#b00'>{html.escape(str(error))}</span>"
            return
        status.value = "<i>generating...</i>"
        for _piece in stream:
            show(pending=text, reply=stream.text)  # each piece is drawn as it arrives
        box.history = stream.history_after(box.history, text)
        show()
        notes = [f"{stream.completion_tokens} tokens, {stream.finish_reason}" if stream.text.strip() else
                 "the model ended its turn without a word: try again, or a higher temperature"]
        if stream.dropped_turns:
            notes.append(f"{stream.dropped_turns} oldest turns no longer fit the context and were dropped")
        status.value = f"<i>{html.escape('; '.join(notes))}</i>"

    def on_value(change):
        if change["new"].strip():
            message.value = ""  # cleared first: the change it fires is ignored (empty)
            say(change["new"])

    def on_send(_button):
        if message.value.strip():
            text, message.value = message.value, ""
            say(text)

    def on_reset(_button):
        box.history = list(start)
        status.value = "<i>history cleared</i>"
        show()

    message.observe(on_value, names="value")
    send.on_click(on_send)
    reset.on_click(on_reset)
    show()
    box.message, box.send, box.reset, box.conversation, box.status, box.say = message, send, reset, conversation, status, say
    return box
