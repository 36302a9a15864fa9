import Foundation

/// The folder a command writes into: metrics, model files, images. Created up front so that a
/// run that fails late still leaves what it measured.
public struct RunFolder: Sendable {
    public let url: URL

    /// `root/name-YYYYMMDD-HHMMSS`, or exactly `explicit` when given.
    public init(root: String = "runs", name: String, explicit: String? = nil) throws {
        if let explicit {
            url = URL(fileURLWithPath: explicit)
        } else {
            let f = DateFormatter()
            f.dateFormat = "yyyyMMdd-HHmmss"
            f.timeZone = TimeZone(identifier: "UTC")
            url = URL(fileURLWithPath: root).appendingPathComponent("\(name)-\(f.string(from: Date()))")
        }
        do {
            try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        } catch {
            throw RunError("cannot create run folder \(url.path): \(error.localizedDescription)")
        }
    }

    public func file(_ name: String) -> URL { url.appendingPathComponent(name) }
}

/// A failure of a command, with the one line the user sees.
public struct RunError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// One JSON object per line, appended and flushed as it goes (`metrics.jsonl`).
public final class MetricsLog {
    let handle: FileHandle?
    public let url: URL?

    /// A log at `url`, or one that writes nothing (ranks other than 0).
    public init(url: URL?) throws {
        self.url = url
        guard let url else { handle = nil; return }
        FileManager.default.createFile(atPath: url.path, contents: nil)
        guard let h = FileHandle(forWritingAtPath: url.path) else {
            throw RunError("cannot write metrics file \(url.path)")
        }
        handle = h
    }

    public func write(_ record: [String: Any]) {
        guard let handle else { return }
        guard let data = try? JSONSerialization.data(withJSONObject: record, options: [.sortedKeys]) else { return }
        handle.write(data + Data("\n".utf8))
    }

    deinit { try? handle?.close() }
}
