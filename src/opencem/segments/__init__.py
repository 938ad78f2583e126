"""Segmentation and campaign lists that honour consent (`opencem segments`, `opencem campaigns`)."""
