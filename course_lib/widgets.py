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
