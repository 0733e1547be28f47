"""Units back to waveforms: a weight-free mean-mel vocoder (Griffin-Lim) and the unit HiFi-GAN
of speech-resynthesis (Polyak et al. 2021), plus `slmscale generate` (GSLM, Lakhotia et al. 2021)."""
