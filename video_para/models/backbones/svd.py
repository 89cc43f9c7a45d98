"""Stable Video Diffusion UNet as a backbone: tapped decoder features + the EDM diffusion loss.

Features: the conditioning (current) image is VAE-encoded, noised to `feature_sigma`, replicated over
`n_frames` frames and passed once through the UNet with SVD's conditioning (VAE latents of the
noise-augmented image concatenated on channels, the CLIP image embedding as cross-attention context,
added time ids fps / motion bucket / noise-aug strength). `feature_frames` (0: n_frames) sets how many
frames that pass runs: with frame_reduction first only frame 0 is read, so fewer frames cost less
(the UNet's temporal layers still see the frames there are; it is a choice of features, like
feature_sigma, not of weights). Forward hooks on `unet.up_blocks[i]`
(`tap_blocks`) grab the decoder activations, each resized to `feature_size`^2 and concatenated; the
UNet pass stops after the last tapped block. Frames are reduced by `frame_reduction`:
  first (default): frame 0, the one aligned with the image whose pixels the head predicts in; later
          frames hold the model's imagined future, useful context but spatially shifted;
  mean | learned (softmax weights over frames).
The start keypoint is a learned embedding added to the `unet.conv_in` output at its latent cell.

Clip convention: `clip` is (B, T, 3, H, W) in [0, 1] at the policy image size, frame 0 being the
conditioning (current) frame, frames 1.. the following ones; the diffusion loss denoises all T frames.
EDM (DESIGN.md): ln sigma ~ N(p_mean, p_std), c_in = 1/sqrt(s^2+1), c_skip = 1/(s^2+1),
c_out = -s/sqrt(s^2+1) (v-prediction), c_noise = ln(s)/4, weight (s^2+1)/s^2. EDM assumes
unit-variance latents: `latent_scale` (a buffer saved with the weights) starts at the VAE's
scaling_factor (0.18215 for SVD's trained VAE) and is re-estimated from the data as 1/std of the
latents by the 'autoencoder' stage, which fits a random-init (tiny) VAE before stage 1.
VAE and CLIP are frozen except in that stage; `mode` applies to the UNet and the keypoint embedding.
In eval mode all noise comes from a fixed seed so predictions are deterministic.
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from .base import BACKBONES, Backbone, BackboneConfig, BackboneOutput, add_at_cells, keypoint_cells
from .svd_components import SvdComponents, components_from_configs, load_components, tiny_components


@dataclass
class SvdBackboneConfig(BackboneConfig):
    type: str = "svd"
    pretrained: str = "stabilityai/stable-video-diffusion-img2vid"   # hub id or local directory
    preset: str = ""                   # "" = load `pretrained` | tiny = random-init small components
    n_frames: int = 7
    tap_blocks: list[int] = field(default_factory=lambda: [1, 2])
    feature_size: int = 64
    frame_reduction: str = "first"     # first | mean | learned (see module docstring)
    feature_sigma: float = 0.5         # noise level of the feature pass (SVD sigmas span ~0.002..700)
    feature_frames: int = 0            # frames in the feature pass (0: n_frames; see module docstring)
    fps: int = 6                       # added time ids, as the SVD pipeline passes them (fps - 1 there)
    motion_bucket_id: int = 127
    noise_aug_strength: float = 0.02
    aux_loss: bool = True              # return the diffusion loss as aux_loss when training with a clip
    p_mean: float = 0.7
    p_std: float = 1.6
    gradient_checkpointing: bool = True
    ae_kl_weight: float = 1.0e-6       # 'autoencoder' stage: KL weight beside the reconstruction MSE
    TRAINING_ONLY = BackboneConfig.TRAINING_ONLY + ("feature_sigma", "feature_frames", "aux_loss", "p_mean", "p_std", "ae_kl_weight",
                                                    "gradient_checkpointing")

    def clip_frames(self) -> int:
        return self.n_frames

    def frames_in_feature_pass(self) -> int:
        if not 0 <= self.feature_frames <= self.n_frames:
            raise ValueError(f"svd backbone: feature_frames must be 0 (all) .. n_frames={self.n_frames}, "
                             f"got {self.feature_frames}")
        return self.feature_frames or self.n_frames


def edm_preconditioning(sigma: torch.Tensor):
    """(c_in, c_skip, c_out, c_noise) of EDM with sigma_data = 1 and SVD's v-prediction sign."""
    s2 = sigma ** 2 + 1
    return 1 / s2.sqrt(), 1 / s2, -sigma / s2.sqrt(), sigma.log() / 4


def edm_loss_weight(sigma: torch.Tensor) -> torch.Tensor:
    return (sigma ** 2 + 1) / sigma ** 2


class _StopUNet(Exception):
    """Raised by the last tap hook: the remaining UNet blocks are not needed for features."""


class SvdBackbone(Backbone):
    def __init__(self, cfg: SvdBackboneConfig, image_size, components: SvdComponents | None = None):
        super().__init__(cfg, image_size)
        if cfg.frame_reduction not in ("first", "mean", "learned"):
            raise ValueError(f"svd backbone: frame_reduction must be first|mean|learned, got '{cfg.frame_reduction}'")
        if cfg.preset not in ("", "tiny"):
            raise ValueError(f"svd backbone: preset must be '' or 'tiny', got '{cfg.preset}'")
        parts = components or (tiny_components() if cfg.preset == "tiny" else load_components(cfg.pretrained))
        self.unet, self.vae, self.image_encoder, self.processor = parts.unet, parts.vae, parts.image_encoder, parts.processor
        self.register_buffer("latent_scale", torch.tensor(float(self.vae.config.scaling_factor)))
        n_up = len(self.unet.up_blocks)
        if not cfg.tap_blocks or any(not 0 <= i < n_up for i in cfg.tap_blocks):
            raise ValueError(f"svd backbone: tap_blocks {cfg.tap_blocks} must index unet.up_blocks (0..{n_up - 1})")
        self.factor = 2 ** (len(self.vae.config.block_out_channels) - 1)
        H, W = self.image_size
        if H % (self.factor * 2 ** (n_up - 1)) or W % (self.factor * 2 ** (n_up - 1)):
            raise ValueError(f"svd backbone: image size {W}x{H} (WxH) must be a multiple of "
                             f"{self.factor * 2 ** (n_up - 1)} (VAE x UNet downsampling)")
        self.latent_grid = (H // self.factor, W // self.factor)
        self.out_channels = tap_channels(self.unet.config, cfg.tap_blocks)
        crop = parts.processor.crop_size
        self.clip_size = (crop["height"], crop["width"])
        self.register_buffer("clip_mean", torch.tensor(parts.processor.image_mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("clip_std", torch.tensor(parts.processor.image_std).view(1, 3, 1, 1), persistent=False)
        self.keypoint = nn.Parameter(torch.randn(self.unet.config.block_out_channels[0]) * 0.1)
        self.feature_frames = cfg.frames_in_feature_pass()
        self.frame_logits = nn.Parameter(torch.zeros(self.feature_frames)) if cfg.frame_reduction == "learned" else None
        for part in (self.vae, self.image_encoder):
            part.requires_grad_(False)
        if cfg.gradient_checkpointing:
            self.unet.enable_gradient_checkpointing()
        self._cells, self._taps, self._attention_set = None, None, False
        self._aux = cfg.aux_loss and cfg.mode != "frozen"
        self.unet.conv_in.register_forward_hook(self._add_keypoint)
        for i in cfg.tap_blocks:
            self.unet.up_blocks[i].register_forward_hook(self._tap_hook(i))
        self.apply_mode()
        self.train(self.training)

    def train(self, mode: bool = True):
        super().train(mode)
        self.vae.eval()
        self.image_encoder.eval()
        return self

    def added_parameters(self) -> list[nn.Parameter]:
        return super().added_parameters() + ([] if self.frame_logits is None else [self.frame_logits])

    def save_architecture(self, directory) -> None:
        SvdComponents(self.unet, self.vae, self.image_encoder, self.processor).save_configs(directory)

    def prepare_stage(self, stage: str, uses_aux: bool) -> None:
        """autoencoder: only the VAE trains. diffusion: the UNet and keypoint (no frame reduction).
        Feature stages without the diffusion loss: the UNet after the last tap is never reached."""
        self._aux = uses_aux and self.cfg.aux_loss and self.cfg.mode != "frozen"
        if stage == "autoencoder":
            if self.cfg.mode == "frozen":
                raise ValueError("svd backbone: the 'autoencoder' stage trains the VAE; backbone.mode is frozen")
            self.requires_grad_(False)
            self.vae.requires_grad_(True)
        elif stage == "diffusion":
            if self.frame_logits is not None:
                self.frame_logits.requires_grad_(False)
        elif not self._aux:
            last = max(self.cfg.tap_blocks)
            for part in [*self.unet.up_blocks[last + 1:], self.unet.conv_norm_out, self.unet.conv_out]:
                part.requires_grad_(False)

    def pretrain_loss(self, stage: str, batch: dict) -> torch.Tensor:
        if stage == "autoencoder":
            return self.autoencoder_loss(batch["image"])
        if stage == "diffusion":
            if "clip" not in batch:
                raise ValueError("stage 'diffusion' needs clips: set data.clip_frames > 1")
            return self.diffusion_loss(batch["clip"], batch["start_pixel"])
        return super().pretrain_loss(stage, batch)

    # -- hooks --------------------------------------------------------------------------------
    def _add_keypoint(self, module, args, x):
        if self._cells is None:            # e.g. diffusion_loss without a start pixel
            return x
        return add_at_cells(x, *self._cells, self.keypoint)

    def _tap_hook(self, i):
        def hook(module, args, out):
            if self._taps is None:         # diffusion loss: full pass, nothing to collect
                return None
            self._taps[i] = out
            if len(self._taps) == len(self.cfg.tap_blocks):
                raise _StopUNet
            return None
        return hook

    # -- conditioning ---------------------------------------------------------------------------
    def _randn(self, shape, like, seed):
        if self.training:
            return torch.randn(shape, device=like.device, dtype=like.dtype)
        g = torch.Generator().manual_seed(seed)   # eval: deterministic predictions
        return torch.randn(shape, generator=g).to(like.device, like.dtype)

    def _set_attention(self, device):
        """xformers on CUDA when installed; otherwise diffusers' default SDPA processors."""
        if not self._attention_set and device.type == "cuda" and importlib.util.find_spec("xformers"):
            self.unet.enable_xformers_memory_efficient_attention()
        self._attention_set = True

    @torch.no_grad()
    def _condition(self, image):
        """SVD conditioning of images (B,3,H,W) in [0,1]: CLIP context, latents (B,4,h,w) to concatenate
        on every frame, time ids."""
        clip_in = F.interpolate(image, self.clip_size, mode="bicubic", align_corners=False, antialias=True)
        context = self.image_encoder(pixel_values=(clip_in.clamp(0, 1) - self.clip_mean) / self.clip_std).image_embeds
        aug = self.cfg.noise_aug_strength
        x = image * 2 - 1
        cond = self.vae.encode(x + aug * self._randn(x.shape, x, 1)).latent_dist.mode()
        time_ids = torch.tensor([self.cfg.fps, self.cfg.motion_bucket_id, aug], device=image.device)
        return context.unsqueeze(1), cond, time_ids.to(context.dtype).expand(image.shape[0], 3)

    @torch.no_grad()
    def _latents(self, frames):
        """VAE latents (N,4,h,w) of frames (N,3,H,W) in [0,1], scaled as the UNet expects."""
        return self.vae.encode(frames * 2 - 1).latent_dist.mode() * self.latent_scale

    def _unet(self, noisy, sigma, cond, context, time_ids):
        """EDM-preconditioned UNet on noisy (B,T,4,h,w): denoised estimate of the clean latents (and
        hooks fire). `cond` (B,4,h,w) is concatenated to every frame."""
        c_in, c_skip, c_out, c_noise = edm_preconditioning(sigma)
        c_in, c_skip, c_out = (c.view(-1, 1, 1, 1, 1) for c in (c_in, c_skip, c_out))
        cond = cond.unsqueeze(1).expand(-1, noisy.shape[1], -1, -1, -1)
        x = torch.cat([noisy * c_in, cond], dim=2).to(self.unet.dtype)
        out = self.unet(x, c_noise, context, time_ids, return_dict=False)[0]
        return c_skip * noisy + c_out * out.to(noisy.dtype)

    # -- public --------------------------------------------------------------------------------
    def forward(self, image, start_pixel, clip=None) -> BackboneOutput:
        self.check_inputs(image, start_pixel)
        self._set_attention(image.device)
        B, T = image.shape[0], self.feature_frames
        context, cond, time_ids = self._condition(image)
        with_aux = clip is not None and self.training and self._aux
        if with_aux:    # frame 0 of the clip is the image: encode every frame once, reuse the conditioning
            self._check_clip(clip, image)
            clip_latents = self._latents(clip.flatten(0, 1)).unflatten(0, clip.shape[:2])
            latents = clip_latents[:, 0]
        else:
            latents = self._latents(image)
        latents = latents.unsqueeze(1).expand(-1, T, -1, -1, -1)
        sigma = torch.full((B,), self.cfg.feature_sigma, device=image.device)
        noisy = latents + sigma.view(-1, 1, 1, 1, 1) * self._randn(latents.shape, latents, 2)
        taps = self.tapped_features(noisy, sigma, cond, context, time_ids, start_pixel)
        aux = self._diffusion_loss(clip_latents, cond, context, time_ids, start_pixel) if with_aux else None
        return BackboneOutput(self._reduce_frames(taps.unflatten(0, (B, T))), aux)

    def tapped_features(self, noisy, sigma, cond, context, time_ids, start_pixel):
        """One UNet pass; the tapped up-block outputs resized and concatenated: (B*T, C, fs, fs)."""
        self._cells = self._frame_cells(start_pixel, noisy.shape[1])
        self._taps = {}
        try:
            self._unet(noisy, sigma, cond, context, time_ids)
        except _StopUNet:
            pass
        finally:
            taps, self._taps, self._cells = self._taps, None, None
        size = (self.cfg.feature_size, self.cfg.feature_size)
        return torch.cat([F.interpolate(taps[i].float(), size, mode="bilinear", align_corners=False)
                          for i in self.cfg.tap_blocks], dim=1)

    def _frame_cells(self, start_pixel, n_frames):
        """Latent (row, col) of the keypoint per sample, repeated for the UNet's (B*T) frame batch."""
        cells = keypoint_cells(start_pixel, self.image_size, self.latent_grid)
        return tuple(c.repeat_interleave(n_frames) for c in cells)

    def _reduce_frames(self, feats):   # (B, T, C, h, w) -> (B, C, h, w)
        if self.cfg.frame_reduction == "first":
            return feats[:, 0]
        if self.cfg.frame_reduction == "mean":
            return feats.mean(1)
        return torch.einsum("t,btchw->bchw", self.frame_logits.softmax(0), feats)

    def _check_clip(self, clip, image=None) -> None:
        H, W = self.image_size
        if clip.ndim != 5 or clip.shape[2] != 3 or tuple(clip.shape[-2:]) != self.image_size:
            raise ValueError(f"svd backbone: clip must be (B, T, 3, {H}, {W}), got {tuple(clip.shape)}")
        if image is not None and not torch.equal(clip[:, 0], image):
            raise ValueError("svd backbone: frame 0 of the clip must be the image (the current frame)")

    def sample_sigma(self, n: int, like: torch.Tensor) -> torch.Tensor:
        """EDM's training noise levels: ln sigma ~ N(p_mean, p_std)."""
        return (self.cfg.p_mean + self.cfg.p_std * self._randn((n,), like, 3)).exp()

    def diffusion_loss(self, clip: torch.Tensor, start_pixel: torch.Tensor | None = None) -> torch.Tensor:
        """EDM v-prediction loss of SVD on the VAE latents of `clip` (B,T,3,H,W) in [0,1], frame 0 conditioning."""
        self._check_clip(clip)
        self._set_attention(clip.device)
        context, cond, time_ids = self._condition(clip[:, 0])
        latents = self._latents(clip.flatten(0, 1)).unflatten(0, clip.shape[:2])
        return self._diffusion_loss(latents, cond, context, time_ids, start_pixel)

    def _diffusion_loss(self, latents, cond, context, time_ids, start_pixel):
        B, T = latents.shape[:2]
        sigma = self.sample_sigma(B, latents)
        noisy = latents + sigma.view(-1, 1, 1, 1, 1) * self._randn(latents.shape, latents, 4)
        self._cells = None if start_pixel is None else self._frame_cells(start_pixel, T)
        try:
            denoised = self._unet(noisy, sigma, cond, context, time_ids)
        finally:
            self._cells = None
        return (edm_loss_weight(sigma) * (denoised - latents).pow(2).mean(dim=(1, 2, 3, 4))).mean()

    def autoencoder_loss(self, image: torch.Tensor) -> torch.Tensor:
        """Stage 0 for a random-init VAE: reconstruction MSE + ae_kl_weight * KL of images (B,3,H,W) in
        [0,1]; also tracks latent_scale = 1/std of the latents (a running average, like BatchNorm's)."""
        x = image * 2 - 1
        posterior = self.vae.encode(x).latent_dist
        recon = self.vae.decode(posterior.sample(), num_frames=1).sample
        if self.training:
            with torch.no_grad():
                self.latent_scale.lerp_(1 / posterior.mode().float().std(), 0.05)
        return F.mse_loss(recon, x) + self.cfg.ae_kl_weight * posterior.kl().mean()


def tap_channels(unet_config, tap_blocks) -> int:
    """Channels of the concatenated taps: up block i outputs reversed(block_out_channels)[i]."""
    chans = list(reversed(unet_config.block_out_channels))
    return sum(chans[i] for i in tap_blocks)


@BACKBONES.register("svd", SvdBackboneConfig)
def build_svd(cfg, image_size, architecture=None):
    return SvdBackbone(cfg, image_size, components_from_configs(architecture) if architecture else None)

