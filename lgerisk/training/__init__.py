"""Training loops (pretrain; finetune to come): devices, AMP, DDP, checkpoints, run folders."""
