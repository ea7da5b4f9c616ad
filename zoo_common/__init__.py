"""What both `zoo` and `export` use, with the standard library, numpy and
Pillow only (no Keras, no TensorFlow): atomic files (`files`), image grids
(`grid`), class labels (`labels`), paths through latent space (`latents`) and the layout of a run
directory (`layout`). It imports nothing of genzoo above it.
"""
