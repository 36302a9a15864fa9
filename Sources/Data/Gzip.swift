import CZlib
import Foundation

/// Whole-file reads and writes through zlib's gz* interface. Reading is transparent: a file
/// that is not gzip-compressed is returned as it is, so callers need not look at the suffix.
public enum GzipFile {
    /// The decompressed bytes of `path` (or its raw bytes if it is not gzip data).
    public static func read(path: String) throws -> [UInt8] {
        guard FileManager.default.fileExists(atPath: path) else {
            throw DatasetError.missingFile(path: path, hint: "")
        }
        guard let file = gzopen(path, "rb") else {
            throw DatasetError.unreadable(path: path, reason: String(cString: strerror(errno)))
        }
        defer { gzclose(file) }

        let chunk = 1 << 22
        var out: [UInt8] = []
        out.reserveCapacity(expectedSize(path: path) ?? chunk)
        var scratch = [UInt8](repeating: 0, count: chunk)
        while true {
            let n = scratch.withUnsafeMutableBytes { gzread(file, $0.baseAddress, UInt32(chunk)) }
            if n <= 0 { break }
            out.append(contentsOf: scratch[0..<Int(n)])
        }
        // gzread reports a truncated stream by returning what it has and recording the error,
        // so success is only known from gzerror once the loop has stopped.
        var status: Int32 = Z_OK
        let message = gzerror(file, &status)
        if status != Z_OK {
            // zlib prefixes its message with the path, which DatasetError already shows.
            var reason = message.map { String(cString: $0) } ?? ""
            if reason.hasPrefix(path + ": ") { reason.removeFirst(path.count + 2) }
            throw DatasetError.unreadable(path: path, reason: reason.isEmpty ? "zlib error \(status)" : reason)
        }
        return out
    }

    /// Writes `data` gzip-compressed to `path`, replacing any existing file.
    public static func write(data: [UInt8], to path: String) throws {
        guard let file = gzopen(path, "wb") else {
            throw DatasetError.unreadable(path: path, reason: "cannot create: " + String(cString: strerror(errno)))
        }
        var written: Int32 = 0
        if !data.isEmpty {
            written = data.withUnsafeBytes { gzwrite(file, $0.baseAddress, UInt32($0.count)) }
        }
        let closed = gzclose(file)
        guard Int(written) == data.count, closed == Z_OK else {
            throw DatasetError.unreadable(path: path, reason: "gzip write failed")
        }
    }

    /// The uncompressed size recorded in a gzip trailer (modulo 2^32), or the file size for
    /// plain files; only a capacity hint, never trusted for validation.
    private static func expectedSize(path: String) -> Int? {
        guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? handle.close() }
        guard let head = try? handle.read(upToCount: 2), head.count == 2 else { return nil }
        guard let end = try? handle.seekToEnd() else { return nil }
        guard head[head.startIndex] == 0x1F, head[head.startIndex + 1] == 0x8B else { return Int(end) }
        guard end >= 4, (try? handle.seek(toOffset: end - 4)) != nil,
              let tail = try? handle.read(upToCount: 4), tail.count == 4 else { return nil }
        let b = Array(tail)
        let size = Int(b[0]) | Int(b[1]) << 8 | Int(b[2]) << 16 | Int(b[3]) << 24
        // Cap the hint: a corrupt trailer must not make us reserve gigabytes up front.
        return min(size, 1 << 30)
    }
}
