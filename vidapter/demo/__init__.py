"""The demo: an image ViT vidapter pretrained itself on synthetic images, adapted to synthetic videos with AIM."""
