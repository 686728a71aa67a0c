"""The parts of ``tinct serve``'s page beyond the photo batch (:mod:`tinct.app`).

* :mod:`tinct.web.points`: colour where the user wants it. A photo decoded once, point hints
  placed, moved, recoloured and deleted on it, a reference photo, the result re-colorized by a
  hint model at full resolution after each change (plain functions, no Gradio);
* :mod:`tinct.web.point_tab`: the *Colour with points* section of the page;
* :mod:`tinct.web.clip`: a short video clip in, the colorized clip out, with its limits
  (the *Video clip* section).
"""
