import Foundation
import NN
import Safetensors
import TensorCore

/// What a model file says about itself, in the safetensors header metadata.
public struct ModelMetadata: Codable, Equatable, Sendable {
    /// "teacher" (full precision) or "student" (quantized); loading checks it.
    public var role: String
    public var architecture: ResNetConfig
    public var imageShape: [Int]
    /// Per-channel input normalisation the model was trained with.
    public var mean: [Float]
    public var std: [Float]
    /// Free-form provenance: command, seed, accuracy.
    public var notes: [String: String]

    public init(role: String, architecture: ResNetConfig, imageShape: [Int], mean: [Float], std: [Float],
                notes: [String: String] = [:]) {
        (self.role, self.architecture, self.imageShape, self.mean, self.std, self.notes) =
            (role, architecture, imageShape, mean, std, notes)
    }

    public static let key = "acq_dist"
}

/// A ResNet with its metadata in one safetensors file whose tensor names are PyTorch's, so it
/// loads with `model.load_state_dict(safetensors.torch.load_file(path))`.
public enum ModelFile {
    /// - extra: further metadata entries (a quantized student's configuration, for instance).
    public static func save(_ model: any Layer, metadata: ModelMetadata, extra: [String: String] = [:],
                            to url: URL) throws {
        let json = String(decoding: try JSONEncoder.sorted.encode(metadata), as: UTF8.self)
        var file = StateDict.file(of: model, metadata: extra.merging([ModelMetadata.key: json, "format": "pt"]) { $1 })
        file.source = url.path
        try file.write(to: url)
    }

    /// Loads a model file written by `save`, checking it holds a model of role `expectedRole`.
    public static func load(_ url: URL, expectedRole: String? = "teacher") throws -> (ResNet, ModelMetadata) {
        let file = try SafetensorsFile.read(contentsOf: url)
        let metadata = try metadata(of: file, expectedRole: expectedRole)
        let model = ResNet(metadata.architecture)
        try StateDict.load(file, into: model)
        return (model, metadata)
    }

    /// The metadata of a file written by `save`, checked to be of role `expectedRole` (when
    /// given) and of a supported architecture; errors name `file.source`.
    public static func metadata(of file: SafetensorsFile, expectedRole: String?) throws -> ModelMetadata {
        guard let json = file.metadata[ModelMetadata.key] else {
            throw StateDictError.badMetadata(file: file.source, key: ModelMetadata.key,
                                             value: "(absent: not written by acq-dist; use a file from `acq-dist pretrain`)")
        }
        let metadata: ModelMetadata
        do {
            metadata = try JSONDecoder().decode(ModelMetadata.self, from: Data(json.utf8))
        } catch {
            throw StateDictError.badMetadata(file: file.source, key: ModelMetadata.key, value: String(json.prefix(80)))
        }
        if let expectedRole, metadata.role != expectedRole {
            throw StateDictError.wrongKind(file: file.source, expected: expectedRole, actual: metadata.role)
        }
        guard ResNetConfig.supportedDepths.contains(metadata.architecture.depth) else {
            throw StateDictError.badMetadata(file: file.source, key: "architecture.depth", value: "\(metadata.architecture.depth)")
        }
        return metadata
    }
}

extension JSONEncoder {
    static var sorted: JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        return e
    }
}
