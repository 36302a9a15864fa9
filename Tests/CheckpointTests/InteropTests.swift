import Autodiff
import Checkpoint
import Foundation
import NN
import Safetensors
import TensorCore
import Testing
import TestSupport

// Model files as PyTorch sees them: `model.load_state_dict(safetensors.torch.load_file(path))`
// with strict=True needs exactly the names of PyTorch's state_dict, I64 for num_batches_tracked and
// F32 for the rest. These tests need no PyTorch: the names are derived from the reference module
// structure and cross-checked against the golden resnet20 file, which PyTorch wrote.
// scripts/check-pytorch-interop.py checks the same files with PyTorch itself.
@Suite struct InteropTests {
    static let architecture = ResNetConfig(depth: 20, inChannels: 1, classes: 10)
    static let metadata = ModelMetadata(role: "teacher", architecture: architecture, imageShape: [1, 28, 28],
                                        mean: [0.2860], std: [0.3530], notes: ["source": "golden resnet20"])

    /// The keys of PyTorch's `state_dict()` of the reference ResNet (torch_ref.py's module tree:
    /// conv, bn, layers.{i}.c1/b1/c2/b2[/sc.0/sc.1], fc), in its order.
    static func pytorchStateDictNames(_ config: ResNetConfig) -> [String] {
        func bn(_ p: String) -> [String] {
            ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"].map { "\(p).\($0)" }
        }
        var names = ["conv.weight"] + bn("bn")
        var channels = 16, block = 0
        for (stage, width) in [16, 32, 64].enumerated() {
            for i in 0..<config.blocksPerStage {
                let p = "layers.\(block)"
                names += ["\(p).c1.weight"] + bn("\(p).b1") + ["\(p).c2.weight"] + bn("\(p).b2")
                if (stage > 0 && i == 0) || channels != width { names += ["\(p).sc.0.weight"] + bn("\(p).sc.1") }
                channels = width
                block += 1
            }
        }
        return names + ["fc.weight", "fc.bias"]
    }

    func withScratchDirectory<R>(_ body: (URL) throws -> R) throws -> R {
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("InteropTests-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: url) }
        return try body(url)
    }

    func goldenModel() throws -> (ResNet, Tensor, SafetensorsFile) {
        let g = try Golden.load("resnet20")
        let model = ResNet(Self.architecture)
        try StateDict.load(g, into: model, prefix: "param.", strict: false)
        return (model, try g.tensor("x"), g)
    }

    func evalLogits(_ model: ResNet, _ x: Tensor) -> Tensor {
        model.setMode(.eval)
        return withoutGradients { model(Variable(x)) }.value
    }

    @Test func derivedNamesAgreeWithThePyTorchGoldenFile() throws {
        let g = try Golden.load("resnet20")
        let golden = g.names.filter { $0.hasPrefix("param.") }.map { String($0.dropFirst("param.".count)) }
        let derived = Self.pytorchStateDictNames(Self.architecture)
        #expect(derived.count == 128 && Set(derived).count == 128)
        // The golden file holds every state-dict entry except the num_batches_tracked counters.
        #expect(Set(golden) == Set(derived.filter { !$0.hasSuffix("num_batches_tracked") }))
    }

    @Test func savedFileHasPyTorchNamesDtypesAndShapes() throws {
        let (model, _, g) = try goldenModel()
        try withScratchDirectory { dir in
            let url = dir.appendingPathComponent("teacher.safetensors")
            try ModelFile.save(model, metadata: Self.metadata, to: url)
            let raw = try SafetensorsFile.read(contentsOf: url)
            let expected = Self.pytorchStateDictNames(Self.architecture)
            #expect(raw.count == expected.count)
            #expect(Set(raw.names) == Set(expected),
                    "extra: \(Set(raw.names).subtracting(expected).sorted()), missing: \(Set(expected).subtracting(raw.names).sorted())")
            for name in raw.names {
                let want: DType = name.hasSuffix("num_batches_tracked") ? .i64 : .f32
                #expect(raw.dtypes[name] == want, "\(name) is \(raw.dtypes[name].map(\.rawValue) ?? "?"), PyTorch has \(want.rawValue)")
                let t = try raw.tensor(name)
                if name.hasSuffix("num_batches_tracked") {
                    #expect(t.shape == [], "\(name) has shape \(t.shape), PyTorch's is 0-dimensional")
                } else {
                    let reference = try g.tensor("param.\(name)")
                    #expect(t.shape == reference.shape, "\(name): \(t.shape) vs PyTorch \(reference.shape)")
                    #expect(t.scalars == reference.scalars, "\(name) changed on the way through the file")
                }
            }
            #expect(raw.metadata["format"] == "pt")
            let json = try #require(raw.metadata["acq_dist"])
            #expect(try JSONDecoder().decode(ModelMetadata.self, from: Data(json.utf8)) == Self.metadata)
        }
    }

    @Test func loadedModelGivesIdenticalLogits() throws {
        let (model, x, g) = try goldenModel()
        try withScratchDirectory { dir in
            let url = dir.appendingPathComponent("teacher.safetensors")
            try ModelFile.save(model, metadata: Self.metadata, to: url)
            let (loaded, metadata) = try ModelFile.load(url)
            #expect(metadata == Self.metadata)
            let want = evalLogits(model, x)
            #expect(evalLogits(loaded, x).scalars == want.scalars)
            // And both are PyTorch's eval logits of the golden model.
            expectClose(want, try g.tensor("logits_eval"), rtol: 1e-3, atol: 1e-4, "logits_eval")
        }
    }

    @Test func studentFileRefusedWhereTeacherExpected() throws {
        let (model, _, _) = try goldenModel()
        try withScratchDirectory { dir in
            let url = dir.appendingPathComponent("student.safetensors")
            var metadata = Self.metadata
            metadata.role = "student"
            try ModelFile.save(model, metadata: metadata, to: url)
            #expect(throws: StateDictError.wrongKind(file: url.path, expected: "teacher", actual: "student")) {
                try ModelFile.load(url, expectedRole: "teacher")
            }
            do {
                _ = try ModelFile.load(url)
                Issue.record("a student file loaded as a teacher")
            } catch {
                #expect("\(error)".contains(url.path), "the message should name the file: \(error)")
            }
        }
    }
}
