import TensorCore

/// A labelled image set held as raw bytes (a quarter of the float size, so a whole training set
/// stays resident); batches are converted to normalised float tensors when they are assembled.
public struct Dataset: Sendable {
    public enum Split: String, Sendable, CaseIterable {
        case train, test
    }

    public let name: String
    public let channels: Int
    public let height: Int
    public let width: Int
    public let classes: Int
    /// pixels: [count, channels, height, width], 0...255
    public let pixels: [UInt8]
    /// labels: [count], each in 0..<classes
    public let labels: [Int32]
    /// Per-channel normalisation in [0, 1] pixel units, x = (p / 255 - mean[c]) / std[c], kept
    /// here so that a checkpoint can record what its inputs were.
    public let mean: [Float]
    public let std: [Float]

    public var count: Int { labels.count }
    /// Elements of one image: channels * height * width.
    public var imageSize: Int { channels * height * width }

    /// pixels: [labels.count, channels, height, width]; mean, std: [channels]
    public init(name: String, pixels: [UInt8], labels: [Int32], channels: Int, height: Int, width: Int,
                classes: Int, mean: [Float], std: [Float]) {
        precondition(channels > 0 && height > 0 && width > 0, "image shape \(channels)x\(height)x\(width)")
        precondition(pixels.count == labels.count * channels * height * width,
                     "\(pixels.count) pixels for \(labels.count) images of \(channels)x\(height)x\(width)")
        precondition(mean.count == channels && std.count == channels && std.allSatisfy { $0 > 0 },
                     "normalisation mean \(mean) / std \(std) for \(channels) channels")
        precondition(labels.allSatisfy { $0 >= 0 && Int($0) < classes }, "labels outside 0..<\(classes)")
        self.name = name
        self.pixels = pixels
        self.labels = labels
        self.channels = channels
        self.height = height
        self.width = width
        self.classes = classes
        self.mean = mean
        self.std = std
    }

    /// The images and labels at `indices`, normalised and optionally augmented.
    ///
    /// The augmentation of image `indices[i]` comes from the stream
    /// (seed, `Augmentation.randomPurpose`, step, index: indices[i]), so it does not depend on
    /// which rank assembles it or where in the batch it sits.
    /// - Returns: images: [indices.count, channels, height, width]; labels: [indices.count]
    public func batch(indices: [Int], augment: Augmentation? = nil, seed: UInt64 = 0,
                      step: Int = 0) -> (images: Tensor, labels: [Int]) {
        for i in indices { precondition(i >= 0 && i < count, "sample index \(i) outside 0..<\(count)") }
        let n = indices.count
        var images = Tensor(uninitializedShape: [n, channels, height, width])
        guard n > 0 else { return (images, []) }
        let table = normalisationTable()
        let (size, plane, h, w, c) = (imageSize, height * width, height, width, channels)
        let pieces = Compute.ranges(n)
        images.withUnsafeMutableBufferPointer { out in
            pixels.withUnsafeBufferPointer { src in
                table.withUnsafeBufferPointer { lut in
                    guard let dst0 = out.baseAddress, let src0 = src.baseAddress, let lut0 = lut.baseAddress else { return }
                    Compute.parallelFor(pieces.count) { piece in
                        for i in pieces[piece] {
                            let index = indices[i]
                            let draw = augment?.sample(seed: seed, step: step, index: index)
                            for ch in 0..<c {
                                let s = src0 + index * size + ch * plane
                                let d = dst0 + i * size + ch * plane
                                let t = lut0 + ch * 256
                                if let draw, !draw.isIdentity {
                                    draw.apply(source: s, table: t, into: d, height: h, width: w)
                                } else {
                                    for k in 0..<plane { d[k] = t[Int(s[k])] }
                                }
                            }
                        }
                    }
                }
            }
        }
        return (images, indices.map { Int(labels[$0]) })
    }

    /// The first `n` samples, for quick runs.
    public func prefix(_ n: Int) -> Dataset {
        let k = Swift.min(Swift.max(n, 0), count)
        return Dataset(name: name, pixels: Array(pixels[0..<(k * imageSize)]), labels: Array(labels[0..<k]),
                       channels: channels, height: height, width: width, classes: classes, mean: mean, std: std)
    }

    /// table: [channels, 256], the normalised value of every byte value per channel. Computed
    /// in Float as ToTensor + Normalize do, so values match torchvision's bit for bit.
    func normalisationTable() -> [Float] {
        var table = [Float](repeating: 0, count: channels * 256)
        for ch in 0..<channels {
            for v in 0..<256 { table[ch * 256 + v] = (Float(v) / 255 - mean[ch]) / std[ch] }
        }
        return table
    }
}
