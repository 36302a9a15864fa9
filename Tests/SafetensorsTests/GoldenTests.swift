import Foundation
import Safetensors
import TensorCore
import TestSupport
import Testing

/// A metadata value as INDEX.json states it; the header stores the same value JSON-encoded.
private enum JSONScalar: Decodable, Equatable {
    case bool(Bool), number(Double), string(String)

    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let b = try? c.decode(Bool.self) {
            self = .bool(b)
        } else if let d = try? c.decode(Double.self) {
            self = .number(d)
        } else {
            self = .string(try c.decode(String.self))
        }
    }
}

private struct IndexEntry: Decodable {
    let tensors: [String: [Int]]
    let meta: [String: JSONScalar]
}

@Suite struct GoldenTests {
    private func index() throws -> [String: IndexEntry] {
        let dir = try Golden.directory
        var merged: [String: IndexEntry] = [:]
        for name in ["INDEX.json", "INDEX_acq.json"] {
            let part = try JSONDecoder().decode([String: IndexEntry].self,
                                                from: Data(contentsOf: dir.appendingPathComponent(name)))
            merged.merge(part) { a, _ in a }
        }
        return merged
    }

    @Test func everyGoldenFileMatchesItsIndex() throws {
        let index = try index()
        let files = try FileManager.default.contentsOfDirectory(atPath: Golden.directory.path)
            .filter { $0.hasSuffix(".safetensors") }.map { String($0.dropLast(".safetensors".count)) }
        #expect(Set(files) == Set(index.keys))
        for name in files.sorted() {
            let file = try Golden.load(name)
            let entry = try #require(index[name], "\(name) not in INDEX")
            #expect(Set(file.names) == Set(entry.tensors.keys), "\(name)")
            for (tensor, shape) in entry.tensors {
                #expect(throws: Never.self, "\(name)") { try file.tensor(tensor, shape: shape) }
            }
            #expect(Set(file.metadata.keys) == Set(entry.meta.keys), "\(name)")
            for (key, value) in entry.meta {
                let stored = try JSONDecoder().decode(JSONScalar.self, from: Data((file.metadata[key] ?? "").utf8))
                #expect(stored == value, "\(name).\(key)")
            }
        }
    }

    @Test func spotChecks() throws {
        let resnet = try Golden.load("resnet20")
        #expect(try resnet.tensor("param.conv.weight").shape == [16, 1, 3, 3])
        #expect(try resnet.tensor("logits_eval").shape == [4, 10])
        let conv = try Golden.load("conv2d_0")
        #expect(try conv.tensor("x").shape == [2, 3, 9, 9])
        #expect(conv.metadata["stride"] == "1")
        #expect(conv.dtypes.values.allSatisfy { $0 == .f32 })
        #expect(try conv.tensor("y").scalars.allSatisfy(\.isFinite))
    }

    @Test func expectCloseAcceptsEqualAndReportsDifferent() throws {
        let y = try Golden.load("linear").tensors[0].tensor
        expectClose(y, y, rtol: 0, atol: 0, "identical")
        withKnownIssue {
            var off = y
            off[flat: off.count - 1] += 1
            expectClose(off, y, rtol: 1e-5, atol: 1e-6, "perturbed")
        }
        withKnownIssue { expectClose(y.reshaped([1, -1]), y, rtol: 1, atol: 1, "reshaped") }
    }
}
