//! Analysis on attention matrices: errors (C4), the near/far decomposition, SVD, spectra.
