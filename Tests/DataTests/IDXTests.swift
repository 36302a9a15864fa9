import Data
import Testing

@Suite struct IDXTests {
    let pixels: [UInt8] = (0..<24).map { UInt8($0 * 10) }

    @Test func readsPlainAndGzipFiles() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let bytes = IDX.encode(images: pixels, count: 3, rows: 2, columns: 4)
        try dir.write(bytes, to: "plain-images")
        try GzipFile.write(data: bytes, to: dir.file("images.gz"))
        try GzipFile.write(data: IDX.encode(labels: [7, 0, 9]), to: dir.file("labels.gz"))

        for name in ["plain-images", "images.gz"] {
            let images = try IDX.readImages(path: dir.file(name))
            #expect(images.count == 3 && images.rows == 2 && images.columns == 4)
            #expect(images.pixels == pixels)
        }
        #expect(try IDX.readLabels(path: dir.file("labels.gz")) == [7, 0, 9])
        #expect(try GzipFile.read(path: dir.file("images.gz")) == bytes)
    }

    @Test func badMagicNamesTheFile() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        try GzipFile.write(data: IDX.encode(labels: [1, 2]), to: dir.file("labels.gz"))
        let error = datasetError { _ = try IDX.readImages(path: dir.file("labels.gz")) }
        #expect(error == .badMagic(path: dir.file("labels.gz"), expected: 0x803, found: 0x801))
        #expect(error?.description.contains(dir.file("labels.gz")) == true)
        #expect(error?.description.contains("0x00000801") == true)
    }

    @Test func truncatedPlainFileNamesTheFile() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let bytes = IDX.encode(images: pixels, count: 3, rows: 2, columns: 4)
        try dir.write(Array(bytes.dropLast(5)), to: "short")
        try dir.write(Array(bytes.prefix(10)), to: "header-only")
        try dir.write(bytes + [0], to: "long")

        let short = datasetError { _ = try IDX.readImages(path: dir.file("short")) }
        #expect(short == .payloadLength(path: dir.file("short"), expected: 24, found: 19))
        #expect(short?.description.contains(dir.file("short")) == true)
        #expect(short?.description.contains("truncated") == true)
        let header = datasetError { _ = try IDX.readImages(path: dir.file("header-only")) }
        #expect(header?.path == dir.file("header-only"))
        let long = datasetError { _ = try IDX.readImages(path: dir.file("long")) }
        #expect(long == .payloadLength(path: dir.file("long"), expected: 24, found: 25))
    }

    @Test func truncatedGzipStreamNamesTheFile() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        // Incompressible-looking pixels so that the compressed stream is long enough to cut.
        var state: UInt32 = 1
        let noisy = (0..<4000).map { _ -> UInt8 in
            state = state &* 1_664_525 &+ 1_013_904_223
            return UInt8(truncatingIfNeeded: state >> 24)
        }
        try GzipFile.write(data: IDX.encode(images: noisy, count: 10, rows: 20, columns: 20), to: dir.file("whole.gz"))
        let gz = try rawBytes(dir.file("whole.gz"))
        for cut in [4, 100, gz.count / 2] {
            try dir.write(Array(gz.dropLast(cut)), to: "cut.gz")
            let error = datasetError { _ = try IDX.readImages(path: dir.file("cut.gz")) }
            #expect(error?.path == dir.file("cut.gz"), "cut \(cut): \(String(describing: error))")
            #expect(error?.description.contains(dir.file("cut.gz")) == true)
        }
    }

    @Test func missingFileNamesTheFile() {
        let path = "/nonexistent/dir/train-images-idx3-ubyte.gz"
        let error = datasetError { _ = try IDX.readImages(path: path) }
        #expect(error?.path == path)
        #expect(error?.description.contains(path) == true)
    }
}
