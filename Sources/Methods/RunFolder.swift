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
    var handle: FileHandle?
    public let url: URL?
    /// Opened by `continue(at:)`, once the resumed step is known.
    var waitsForResume: Bool

    /// A log at `url`, or one that writes nothing (ranks other than 0). With `resuming` the
    /// file is left alone until `continue(at:)` says at which step the run goes on.
    public init(url: URL?, resuming: Bool = false) throws {
        self.url = url
        waitsForResume = resuming && url != nil
        if !waitsForResume, let url { handle = try Self.open(url, keeping: Data()) }
    }

    /// A resumed run keeps the records written before the first one of `step` or later (a
    /// stopped run may have logged steps past its checkpoint) and appends from there, so its
    /// log reads as that of an uninterrupted run. Does nothing for a log that was not resuming.
    public func `continue`(at step: Int) throws {
        guard waitsForResume, let url else { return }
        waitsForResume = false
        var kept = Data()
        if let old = try? String(contentsOf: url, encoding: .utf8) {
            for line in old.split(separator: "\n") {
                let record = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
                if let s = record?["step"] as? Int, s >= step { break }
                kept += Data((line + "\n").utf8)
            }
        }
        handle = try Self.open(url, keeping: kept)
    }

    static func open(_ url: URL, keeping contents: Data) throws -> FileHandle {
        guard FileManager.default.createFile(atPath: url.path, contents: contents),
              let h = FileHandle(forWritingAtPath: url.path) else {
            throw RunError("cannot write metrics file \(url.path)")
        }
        h.seekToEndOfFile()
        return h
    }

    public func write(_ record: [String: Any]) {
        precondition(!waitsForResume, "MetricsLog: continue(at:) must come before the first record of a resumed run")
        guard let handle else { return }
        guard let data = try? JSONSerialization.data(withJSONObject: record, options: [.sortedKeys]) else { return }
        handle.write(data + Data("\n".utf8))
    }

    deinit { try? handle?.close() }
}
