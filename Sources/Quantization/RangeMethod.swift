/// How a quantizer chooses its range from what its observer saw.
///
/// - `minMax`: the observed minimum and maximum (method.md section 3, the default): weights per
///   output channel at every forward, activations the EMA of batch ranges while calibrating.
/// - `mse`: the observed range clipped by the ratio that minimises the quantization mean squared
///   error (`RangeSearch`): at 4 and 3 bits a few outliers otherwise spread 15 or 7 levels over a
///   range most values never reach. Weights: per channel, from the current weights at every
///   forward (`MSEObserver`). Activations: once, at the end of calibration, over a histogram of
///   every value the calibration batches produced (`HistogramMSEObserver`); then frozen.
public enum RangeMethod: String, Codable, CaseIterable, Sendable {
    case minMax = "minmax"
    case mse
}
