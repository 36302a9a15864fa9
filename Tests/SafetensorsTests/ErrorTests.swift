import Foundation
import Safetensors
import TensorCore
import Testing

@Suite struct ErrorTests {
    /// Reads `bytes` from a file named `name` and returns the error, checking it names the file.
    private func readError(_ bytes: Data, name: String = "broken.safetensors",
                           sourceLocation: SourceLocation = #_sourceLocation) throws -> SafetensorsError? {
        try withScratchDirectory { dir in
            let url = dir.appendingPathComponent(name)
            try bytes.write(to: url)
            let error = #expect(throws: SafetensorsError.self, sourceLocation: sourceLocation) {
                try SafetensorsFile.read(contentsOf: url)
            }
            #expect(error?.description.contains(name) == true, "\(String(describing: error))",
                    sourceLocation: sourceLocation)
            #expect(error?.description.contains("\n") == false, sourceLocation: sourceLocation)
            return error
        }
    }

    @Test func missingFile() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("absent-\(UUID()).safetensors")
        let error = #expect(throws: SafetensorsError.self) { try SafetensorsFile.read(contentsOf: url) }
        #expect(caseName(error) == "fileMissing")
        #expect(error?.description.contains(url.lastPathComponent) == true)
    }

    @Test func truncatedFiles() throws {
        let bytes = try sampleFile().serialized()
        let headerEnd = 8 + bytes.prefix(8).reversed().reduce(0) { $0 << 8 | Int($1) }
        for cut in [0, 5, 8, headerEnd - 1] {
            #expect(caseName(try readError(bytes.prefix(cut))) == "truncated", "cut at \(cut)")
        }
        // A cut inside the data blames the last tensor, which is the one that no longer fits.
        let error = try readError(bytes.prefix(bytes.count - 1))
        #expect(caseName(error) == "truncated")
        #expect(error?.description.contains("'layer.bias'") == true)
    }

    @Test func malformedHeaderJSON() throws {
        var bytes = try sampleFile().serialized()
        bytes[8] = UInt8(ascii: "[")
        #expect(caseName(try readError(bytes)) == "malformedHeader")

        var misspelt = try sampleFile().serialized()
        let key = try #require(misspelt.range(of: Data(#""shape""#.utf8)))
        misspelt.replaceSubrange(key, with: Data(#""shapf""#.utf8))
        let renamed = try readError(misspelt)
        #expect(caseName(renamed) == "malformedHeader")
        #expect(renamed?.description.contains("'shape'") == true)
        #expect(renamed?.description.contains("layer.") == true)

        let fractional = try readError(rawFile(header: #"{"w":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}}"#,
                                               data: [0, 0, 0, 0]))
        #expect(caseName(fractional) == "malformedHeader")
    }

    @Test func unsupportedDType() throws {
        let error = try readError(rawFile(header: #"{"w":{"dtype":"C64","shape":[1],"data_offsets":[0,8]}}"#,
                                          data: Array(repeating: 0, count: 8)))
        #expect(caseName(error) == "unsupportedDType")
        #expect(error?.description.contains("'w'") == true && error?.description.contains("C64") == true)
    }

    @Test func offsetsInconsistentWithShapeOrOverlapping() throws {
        let short = try readError(rawFile(header: #"{"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,12]}}"#,
                                          data: Array(repeating: 0, count: 16)))
        #expect(caseName(short) == "inconsistentOffsets")
        #expect(short?.description.contains("'w'") == true)

        let overlap = try readError(rawFile(
            header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"#
                + #""b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#,
            data: Array(repeating: 0, count: 12)))
        #expect(caseName(overlap) == "inconsistentOffsets")
        #expect(overlap?.description.contains("'b'") == true && overlap?.description.contains("'a'") == true)
    }

    @Test func missingTensorSuggestsCloseNames() throws {
        try withScratchDirectory { dir in
            let url = dir.appendingPathComponent("model.safetensors")
            try sampleFile().write(to: url)
            let file = try SafetensorsFile.read(contentsOf: url)
            let error = #expect(throws: SafetensorsError.self) { try file.tensor("layer.wieght") }
            #expect(caseName(error) == "missingTensor")
            let text = error?.description ?? ""
            #expect(text.contains("model.safetensors") && text.contains("'layer.wieght'")
                    && text.contains("'layer.weight'"), "\(text)")
        }
    }

    @Test func shapeMismatch() throws {
        try withScratchDirectory { dir in
            let url = dir.appendingPathComponent("model.safetensors")
            try sampleFile().write(to: url)
            let file = try SafetensorsFile.read(contentsOf: url)
            let error = #expect(throws: SafetensorsError.self) { try file.tensor("layer.weight", shape: [3, 2]) }
            #expect(error == .shapeMismatch(file: url.path, tensor: "layer.weight", expected: [3, 2], actual: [2, 3]))
            let text = error?.description ?? ""
            #expect(text.contains("model.safetensors") && text.contains("'layer.weight'")
                    && text.contains("[3, 2]") && text.contains("[2, 3]"), "\(text)")
        }
    }
}
