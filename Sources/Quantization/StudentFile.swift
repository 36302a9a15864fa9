import Checkpoint
import Foundation
import NN
import Safetensors

/// A quantized student in one safetensors file: the teacher's tensor names (so PyTorch reads the
/// float parameters as they are) plus the activation ranges (`...act1.min_val`, ...), with
/// metadata role "student", the quantization configuration under `acq_dist_quantization` and the
/// conv+BN convention the student runs (and was trained) in under `acq_dist_convbn_mode`: "eval"
/// (the conv weight is quantized, BN folded at export) or "tune" (the folded weight is quantized).
/// A file without that key is an eval-mode student (files written before tune mode existed).
public enum StudentFile {
    public static let role = "student"
    public static let configurationKey = "acq_dist_quantization"
    public static let convBNModeKey = "acq_dist_convbn_mode"

    /// - metadata: the teacher's, with role "student" and notes of how the student was made.
    public static func save(_ student: QuantizedResNet, metadata: ModelMetadata, to url: URL) throws {
        precondition(metadata.role == role, "a student file's role is '\(role)', got '\(metadata.role)'")
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let json = String(decoding: try encoder.encode(student.quantization), as: UTF8.self)
        let mode = student.convBNMode == .tune ? Mode.tune : .eval
        try ModelFile.save(student, metadata: metadata, extra: [configurationKey: json, convBNModeKey: mode.rawValue], to: url)
    }

    /// Loads a student written by `save`: a teacher file (or any other role) is refused, naming
    /// both roles; so is a student whose configuration is missing or invalid.
    public static func load(_ url: URL) throws -> (QuantizedResNet, ModelMetadata) {
        let file = try SafetensorsFile.read(contentsOf: url)
        let metadata = try ModelFile.metadata(of: file, expectedRole: role)
        let config = try configuration(of: file)
        let student = try quantize(ResNet(metadata.architecture), config: config,
                                   inputRange: normalisedPixelRange(mean: metadata.mean, std: metadata.std))
        try StateDict.load(file, into: student)
        try student.setConvBNMode(try convBNMode(of: file))
        return (student, metadata)
    }

    /// The conv+BN convention recorded in a student file: eval when absent.
    static func convBNMode(of file: SafetensorsFile) throws -> Mode {
        guard let text = file.metadata[convBNModeKey] else { return .eval }
        guard let mode = Mode(rawValue: text), mode == .eval || mode == .tune else {
            throw QuantizationError.badMetadata(file: file.source, key: convBNModeKey, reason: "is '\(text.prefix(40))', expected 'eval' or 'tune'")
        }
        return mode
    }

    /// The quantization configuration stored in a student (or integer model) file.
    static func configuration(of file: SafetensorsFile) throws -> QuantizationConfig {
        guard let json = file.metadata[configurationKey] else {
            throw QuantizationError.badMetadata(file: file.source, key: configurationKey, reason: "is absent")
        }
        let config: QuantizationConfig
        do {
            config = try JSONDecoder().decode(QuantizationConfig.self, from: Data(json.utf8))
        } catch {
            throw QuantizationError.badMetadata(file: file.source, key: configurationKey,
                                                reason: "is not a quantization configuration: \(json.prefix(80))")
        }
        do {
            try config.validate()
        } catch {
            throw QuantizationError.badMetadata(file: file.source, key: configurationKey, reason: "is invalid: \(error)")
        }
        return config
    }
}
