//! Loading Q/K/V (npz, npy, safetensors, csv, sidecar JSON), bundled samples, synthetic inputs.
