"""genzoo's export layer: trained decoders and generators -> SavedModel and ONNX."""
