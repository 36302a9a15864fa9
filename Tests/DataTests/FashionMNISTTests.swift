import Data
import Foundation
import Testing

@Suite struct FashionMNISTTests {
    @Test func missingDirectoryErrorSaysHowToInstall() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let error = datasetError { _ = try FashionMNIST.load(split: .train, directory: dir.path) }
        let message = try #require(error).description
        #expect(message.contains(dir.file("train-images-idx3-ubyte.gz")))
        #expect(message.contains("apt-get install dataset-fashion-mnist"))
        #expect(message.contains("--data-dir"))
        #expect(!message.contains("\n"))
    }

    @Test func loadsUncompressedFilesAndNormalises() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let pixels = (0..<(3 * 784)).map { UInt8($0 % 256) }
        try dir.write(IDX.encode(images: pixels, count: 3, rows: 28, columns: 28), to: "t10k-images-idx3-ubyte")
        try dir.write(IDX.encode(labels: [4, 0, 9]), to: "t10k-labels-idx1-ubyte")

        let data = try FashionMNIST.load(split: .test, directory: dir.path)
        #expect(data.count == 3 && data.channels == 1 && data.height == 28 && data.width == 28)
        #expect(data.labels == [4, 0, 9] && data.mean == [0.2860] && data.std == [0.3530])
        let (images, labels) = data.batch(indices: [2, 0], augment: nil, seed: 0, step: 0)
        #expect(images.shape == [2, 1, 28, 28] && labels == [9, 4])
        #expect(images[flat: 5] == normalised(pixels[2 * 784 + 5], mean: 0.2860, std: 0.3530))
        #expect(images[flat: 784 + 300] == normalised(pixels[300], mean: 0.2860, std: 0.3530))
    }

    @Test func labelCountMismatchNamesTheLabelFile() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        try GzipFile.write(data: IDX.encode(images: [UInt8](repeating: 1, count: 2 * 784), count: 2, rows: 28, columns: 28),
                           to: dir.file("train-images-idx3-ubyte.gz"))
        try GzipFile.write(data: IDX.encode(labels: [1, 2, 3]), to: dir.file("train-labels-idx1-ubyte.gz"))
        let error = datasetError { _ = try FashionMNIST.load(split: .train, directory: dir.path) }
        #expect(error?.path == dir.file("train-labels-idx1-ubyte.gz"))
    }

    // The set-up scripts install dataset-fashion-mnist, so its absence is a failure here.
    @Test
    func realDatasetLoadsWithExpectedStatistics() throws {
        let start = Date()
        let train = try FashionMNIST.load(split: .train)
        let loadSeconds = Date().timeIntervalSince(start)
        let test = try FashionMNIST.load(split: .test)
        print("Fashion-MNIST train decoded in \(String(format: "%.3f", loadSeconds)) s")
        #expect(loadSeconds < 2)

        #expect(train.count == 60000 && test.count == 10000)
        for d in [train, test] {
            #expect(d.channels == 1 && d.height == 28 && d.width == 28 && d.classes == 10)
            #expect(d.labels.allSatisfy { (0..<10).contains($0) })
        }
        var perClass = [Int](repeating: 0, count: 10)
        for l in train.labels { perClass[Int(l)] += 1 }
        #expect(perClass == [Int](repeating: 6000, count: 10))

        // Whole-set statistics after normalisation, in chunks to bound memory.
        var (sum, sumSquares) = (0.0, 0.0)
        let batchStart = Date()
        for chunk in stride(from: 0, to: train.count, by: 10000) {
            let images = train.batch(indices: Array(chunk..<(chunk + 10000)), augment: nil, seed: 0, step: 0).images
            images.withUnsafeBufferPointer { p in
                for v in p { sum += Double(v); sumSquares += Double(v) * Double(v) }
            }
        }
        print("Fashion-MNIST train normalised in \(String(format: "%.3f", Date().timeIntervalSince(batchStart))) s")
        let n = Double(train.count * 784)
        let mean = sum / n
        let std = (sumSquares / n - mean * mean).squareRoot()
        #expect(abs(mean) < 0.01, "mean \(mean)")
        #expect(abs(std - 1) < 0.02, "std \(std)")
    }
}
