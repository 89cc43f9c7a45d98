"""video_para: Pixel-Aligned Robot Actions (PARA) on video-diffusion and image backbones."""
__version__ = "0.1.0"
