"""Models as data: a manifest (`model.json`) and safetensors weights, loaded without pickle."""
