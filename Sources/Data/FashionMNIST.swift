/// Fashion-MNIST (Xiao et al. 2017): 28x28 greyscale, 10 classes, 60000 train / 10000 test.
public enum FashionMNIST {
    /// Where Debian's `dataset-fashion-mnist` package installs the four .gz files.
    public static let defaultDirectory = "/usr/share/datasets/fashion-mnist"
    /// Training-set pixel mean and std in [0, 1] units, the usual Normalize((0.2860,), (0.3530,)).
    public static let mean: Float = 0.2860
    public static let std: Float = 0.3530
    public static let classNames = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
    static let installHint = "install it with `apt-get install dataset-fashion-mnist` or pass `--data-dir`"

    /// Reads `<prefix>-images-idx3-ubyte[.gz]` and `<prefix>-labels-idx1-ubyte[.gz]` from
    /// `directory` (default `defaultDirectory`), prefix "train" or "t10k".
    /// - Returns: a dataset of [N, 1, 28, 28] images with labels in 0..<10.
    public static func load(split: Dataset.Split, directory: String? = nil) throws -> Dataset {
        let dir = directory ?? defaultDirectory
        let prefix = split == .train ? "train" : "t10k"
        let imagesPath = try Files.locate(["\(prefix)-images-idx3-ubyte.gz", "\(prefix)-images-idx3-ubyte"],
                                          in: dir, hint: installHint)
        let labelsPath = try Files.locate(["\(prefix)-labels-idx1-ubyte.gz", "\(prefix)-labels-idx1-ubyte"],
                                          in: dir, hint: installHint)
        let images = try IDX.readImages(path: imagesPath)
        let labels = try IDX.readLabels(path: labelsPath)
        guard images.rows == 28, images.columns == 28 else {
            throw DatasetError.badHeader(path: imagesPath,
                                         reason: "images are \(images.rows)x\(images.columns), expected 28x28")
        }
        guard labels.count == images.count else {
            throw DatasetError.invalidContent(path: labelsPath,
                                              reason: "\(labels.count) labels for \(images.count) images in \(imagesPath)")
        }
        if let bad = labels.firstIndex(where: { $0 >= classNames.count }) {
            throw DatasetError.invalidContent(path: labelsPath, reason: "label \(labels[bad]) at \(bad) is not in 0..<10")
        }
        return Dataset(name: "fashion-mnist-\(split.rawValue)", pixels: images.pixels, labels: labels.map { Int32($0) },
                       channels: 1, height: 28, width: 28, classes: classNames.count, mean: [mean], std: [std])
    }
}
