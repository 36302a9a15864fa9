/// CIFAR-10 in its binary distribution (cifar-10-binary.tar.gz): each record is one label byte
/// followed by 3072 pixel bytes, already in [3, 32, 32] channel-major order.
public enum CIFAR10 {
    /// Conventional location, mirroring Fashion-MNIST's; no Debian package provides it.
    public static let defaultDirectory = "/usr/share/datasets/cifar-10"
    /// Per-channel (R, G, B) training-set mean and std in [0, 1] units.
    public static let mean: [Float] = [0.4914, 0.4822, 0.4465]
    public static let std: [Float] = [0.2470, 0.2435, 0.2616]
    public static let classNames = ["airplane", "automobile", "bird", "cat", "deer",
                                    "dog", "frog", "horse", "ship", "truck"]
    public static let recordSize = 1 + 3 * 32 * 32
    static let downloadHint =
        "download cifar-10-binary.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html, unpack it and pass `--data-dir`"

    public static func fileNames(split: Dataset.Split) -> [String] {
        split == .train ? (1...5).map { "data_batch_\($0).bin" } : ["test_batch.bin"]
    }

    /// Reads the split's batch files from `directory` (or its `cifar-10-batches-bin`
    /// subdirectory, as the archive unpacks); each file may also be gzip-compressed (`.gz`).
    /// - Returns: a dataset of [N, 3, 32, 32] images with labels in 0..<10.
    public static func load(split: Dataset.Split, directory: String? = nil) throws -> Dataset {
        var dir = directory ?? defaultDirectory
        let unpacked = Files.join(dir, "cifar-10-batches-bin")
        if Files.exists(Files.join(unpacked, fileNames(split: split)[0])) { dir = unpacked }
        let paths = try fileNames(split: split).map { try Files.locate([$0, $0 + ".gz"], in: dir, hint: downloadHint) }
        return try read(paths: paths, name: "cifar-10-\(split.rawValue)")
    }

    /// Concatenates the records of `paths` in order.
    public static func read(paths: [String], name: String = "cifar-10") throws -> Dataset {
        var pixels: [UInt8] = []
        var labels: [Int32] = []
        for path in paths {
            let bytes = try GzipFile.read(path: path)
            guard !bytes.isEmpty, bytes.count % recordSize == 0 else {
                throw DatasetError.invalidContent(
                    path: path, reason: "\(bytes.count) bytes is not a whole, non-zero number of \(recordSize)-byte records")
            }
            let records = bytes.count / recordSize
            pixels.reserveCapacity(pixels.count + records * (recordSize - 1))
            labels.reserveCapacity(labels.count + records)
            for r in 0..<records {
                let base = r * recordSize
                guard bytes[base] < classNames.count else {
                    throw DatasetError.invalidContent(path: path, reason: "label \(bytes[base]) of record \(r) is not in 0..<10")
                }
                labels.append(Int32(bytes[base]))
                pixels.append(contentsOf: bytes[(base + 1)..<(base + recordSize)])
            }
        }
        return Dataset(name: name, pixels: pixels, labels: labels, channels: 3, height: 32, width: 32,
                       classes: classNames.count, mean: mean, std: std)
    }
}
