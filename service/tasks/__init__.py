"""Pre- and post-processing per task (image, text, anomaly, classification); knows no HTTP."""
