import Foundation
import Imaging
import Testing

@Suite struct PNGTests {
    @Test func smallImageRoundTripsWithValidStructure() throws {
        let image = RGBImage(width: 37, height: 23, pixels: noiseBytes(count: 37 * 23 * 3, seed: 1))
        let png = try readPNG(image.pngData())

        #expect(png.chunks.map(\.type) == ["IHDR", "IDAT", "IEND"])
        for chunk in png.chunks {
            #expect(chunk.storedCRC == chunk.computedCRC, "CRC of \(chunk.type)")
        }
        #expect(png.width == 37)
        #expect(png.height == 23)
        #expect(png.bitDepth == 8)
        #expect(png.colourType == 2)
        #expect(png.compressionMethod == 0)
        #expect(png.filterMethod == 0)
        #expect(png.interlaceMethod == 0)
        #expect(png.chunks.last?.data.isEmpty == true)
        #expect(png.pixels == image.pixels)
    }

    @Test func signatureIsThePNGMagic() {
        let data = RGBImage(width: 1, height: 1).pngData()
        #expect(Array(data.prefix(8)) == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
    }

    /// Noise does not compress, so a 700x600 image needs more than one IDAT chunk.
    @Test func largeImageIsSplitOverSeveralIDATChunks() throws {
        let image = RGBImage(width: 700, height: 600, pixels: noiseBytes(count: 700 * 600 * 3, seed: 7))
        let png = try readPNG(image.pngData())
        let idats = png.chunks.filter { $0.type == "IDAT" }
        #expect(idats.count >= 2)
        #expect(png.chunks.allSatisfy { $0.storedCRC == $0.computedCRC })
        #expect(png.pixels == image.pixels)
    }

    @Test func writtenFileDecodesAndLeavesNoTemporaryFile() throws {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("imaging-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        var image = RGBImage(width: 5, height: 4, fill: .white)
        image.setPixel(x: 4, y: 3, RGBColor(1, 2, 3))
        let url = directory.appendingPathComponent("out.png")

        try image.write(to: url)
        try image.write(to: url)

        let png = try readPNG(Data(contentsOf: url))
        #expect(png.pixels == image.pixels)
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path) == ["out.png"])
    }

    @Test func writeErrorIsOneLineNamingThePath() {
        let path = "/nonexistent-imaging-dir-\(UUID().uuidString)/plot.png"
        do {
            try RGBImage(width: 2, height: 2).write(to: URL(fileURLWithPath: path))
            Issue.record("writing into a missing directory succeeded")
        } catch let error as ImageWriteError {
            #expect(error.path == path)
            #expect(error.description.hasPrefix("cannot write \(path): "))
            #expect(error.description.contains("No such file or directory"))
            #expect(!error.description.contains("\n"))
        } catch {
            Issue.record("unexpected error type: \(error)")
        }
    }
}
