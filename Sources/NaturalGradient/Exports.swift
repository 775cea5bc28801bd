// The host layer's devices, contexts and buffers are how callers hand data over, so
// `import NaturalGradient` brings them along.
@_exported import OpenCLHost
