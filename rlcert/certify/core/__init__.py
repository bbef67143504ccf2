"""Core of certification: statistics, sampling, vote certificates, the classifier adaptor, the Certifier base."""
