"""Wrap your own Keras model: tell tfviz its input range and class names once.

    python examples/your_model.py
"""
import keras

import tfviz

# A stand-in for your trained model (inputs scaled to 0..1, softmax output).
inp = keras.Input((64, 64, 3))
x = keras.layers.Conv2D(8, 3, activation="relu", name="conv1")(inp)
x = keras.layers.GlobalAveragePooling2D()(x)
model = keras.Model(inp, keras.layers.Dense(3, activation="softmax", name="classes")(x))

bundle = tfviz.load_model(model, preprocess="0-1", class_names=["cat", "dog", "fox"])
img = tfviz.images.sample_photo("chelsea")
print(bundle.top_k(bundle.load_images([img]), k=3))
print("logits view:", bundle.logits.name, "| conv layers:", bundle.conv_layers())
print("layer lookup suggests names:")
try:
    bundle.layer("conv_1")
except tfviz.TfvizError as err:
    print("  ", err)
