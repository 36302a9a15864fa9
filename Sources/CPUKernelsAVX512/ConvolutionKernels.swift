/// The shape of one convolution, as `TensorCore.ConvGeometry` (this module sits below it).
public struct ConvShape {
    public var inChannels, height, width, outChannels, kernel, stride, padding: Int
    public var outHeight: Int { (height + 2 * padding - kernel) / stride + 1 }
    public var outWidth: Int { (width + 2 * padding - kernel) / stride + 1 }
    public var patch: Int { inChannels * kernel * kernel }

    public init(inChannels: Int, height: Int, width: Int, outChannels: Int, kernel: Int, stride: Int, padding: Int) {
        (self.inChannels, self.height, self.width, self.outChannels) = (inChannels, height, width, outChannels)
        (self.kernel, self.stride, self.padding) = (kernel, stride, padding)
    }
}

/// Packs rows [r0, r0+8) of a row-major [rows, depth] matrix as depth x 8 (zero-padded rows).
@inline(__always)
func packRows(_ m: UnsafePointer<Float>, ld: Int, rows: Int, r0: Int, depth: Int, into out: UnsafeMutablePointer<Float>) {
    let valid = min(8, rows - r0)
    for p in 0..<depth {
        let dst = out + p * 8
        for r in 0..<valid { dst[r] = m[(r0 + r) * ld + p] }
        for r in valid..<8 { dst[r] = 0 }
    }
}
