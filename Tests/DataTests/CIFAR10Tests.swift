import Data
import Foundation
import Testing

@Suite struct CIFAR10Tests {
    /// `count` records whose label is (first + r) % 10 and whose pixels are a function of (r, k).
    func records(_ count: Int, first: Int) -> [UInt8] {
        var bytes: [UInt8] = []
        for r in 0..<count {
            bytes.append(UInt8((first + r) % 10))
            bytes += (0..<3072).map { UInt8(truncatingIfNeeded: first * 7 + r * 31 + $0) }
        }
        return bytes
    }

    @Test func readsSyntheticTestBatch() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        try dir.write(records(4, first: 3), to: "test_batch.bin")

        let data = try CIFAR10.load(split: .test, directory: dir.path)
        #expect(data.count == 4 && data.channels == 3 && data.height == 32 && data.width == 32)
        #expect(data.labels == [3, 4, 5, 6] && data.mean == CIFAR10.mean && data.std == CIFAR10.std)
        #expect(Array(data.pixels[3072..<6144]) == Array(records(4, first: 3)[3074..<6146]))

        let (images, labels) = data.batch(indices: [1], augment: nil, seed: 0, step: 0)
        #expect(images.shape == [1, 3, 32, 32] && labels == [4])
        for (k, channel) in [(0, 0), (1500, 1), (3071, 2)] {
            let raw = UInt8(truncatingIfNeeded: 3 * 7 + 31 + k)
            #expect(images[flat: k] == normalised(raw, mean: CIFAR10.mean[channel], std: CIFAR10.std[channel]))
        }
    }

    @Test func concatenatesTrainBatchesInOrderFromUnpackedDirectory() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        try FileManager.default.createDirectory(atPath: dir.file("cifar-10-batches-bin"), withIntermediateDirectories: false)
        for b in 1...5 {
            try dir.write(records(2, first: b), to: "cifar-10-batches-bin/data_batch_\(b).bin")
        }
        let data = try CIFAR10.load(split: .train, directory: dir.path)
        #expect(data.count == 10)
        #expect(data.labels == [1, 2, 2, 3, 3, 4, 4, 5, 5, 6])
    }

    @Test func badSizesAndMissingFilesNameTheFile() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        try dir.write(Array(records(2, first: 0).dropLast(1)), to: "test_batch.bin")
        let short = datasetError { _ = try CIFAR10.load(split: .test, directory: dir.path) }
        #expect(short?.path == dir.file("test_batch.bin"))

        let missing = datasetError { _ = try CIFAR10.load(split: .train, directory: dir.path) }
        #expect(missing?.path == dir.file("data_batch_1.bin"))
        #expect(missing?.description.contains("--data-dir") == true)
    }

    @Test func labelOutOfRangeIsRejected() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        var bytes = records(2, first: 0)
        bytes[CIFAR10.recordSize] = 10
        try dir.write(bytes, to: "test_batch.bin")
        let error = datasetError { _ = try CIFAR10.load(split: .test, directory: dir.path) }
        #expect(error?.path == dir.file("test_batch.bin"))
    }
}
