import TensorCore

/// Training-time augmentation: pad by `padding` zeros (raw pixel value 0, i.e. before
/// normalisation), take a random height x width crop, then flip horizontally with probability
/// 0.5 — torchvision's RandomCrop(size, padding) followed by RandomHorizontalFlip on ToTensor
/// output, before Normalize.
public struct Augmentation: Sendable, Equatable {
    /// `RandomStream` purpose of augmentation draws ("AUG1"); fixed so that runs are reproducible.
    public static let randomPurpose: UInt32 = 0x4155_4731

    public var horizontalFlip: Bool
    public var padding: Int

    public init(horizontalFlip: Bool = true, padding: Int = 2) {
        precondition(padding >= 0, "padding \(padding)")
        self.horizontalFlip = horizontalFlip
        self.padding = padding
    }

    /// Flip with p 0.5 and pad-2 random crop.
    public static let standard = Augmentation()

    /// The random choices for one sample: the output pixel (y, x) is the source pixel
    /// (y + dy, x' + dx) with x' = flip ? width - 1 - x : x, or zero outside the image.
    public struct Sample: Sendable, Equatable {
        public let flip: Bool
        /// Crop offsets relative to the unpadded image, each in -padding...padding.
        public let dy: Int
        public let dx: Int

        public var isIdentity: Bool { !flip && dy == 0 && dx == 0 }
    }

    /// The choices for sample `index` at `step`. Three words are always drawn, in a fixed order,
    /// so switching one transform off leaves the others' values unchanged.
    public func sample(seed: UInt64, step: Int, index: Int) -> Sample {
        var stream = RandomStream(seed: seed, purpose: Self.randomPurpose, step: step, index: index)
        let top = stream.int(below: 2 * padding + 1)
        let left = stream.int(below: 2 * padding + 1)
        let flip = stream.uniform() < 0.5
        return Sample(flip: horizontalFlip && flip, dy: top - padding, dx: left - padding)
    }
}

extension Augmentation.Sample {
    /// Writes one augmented, normalised channel plane.
    /// source: [height, width] bytes; table: [256] normalised values; out: [height, width]
    func apply(source: UnsafePointer<UInt8>, table: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>,
               height: Int, width: Int) {
        let pad = table[0]
        for y in 0..<height {
            let row = out + y * width
            let sy = y + dy
            guard sy >= 0 && sy < height else {
                row.update(repeating: pad, count: width)
                continue
            }
            let src = source + sy * width
            for x in 0..<width {
                let sx = (flip ? width - 1 - x : x) + dx
                row[x] = sx >= 0 && sx < width ? table[Int(src[sx])] : pad
            }
        }
    }
}
