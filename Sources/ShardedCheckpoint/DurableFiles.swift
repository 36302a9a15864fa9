import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Writes `data` to `path` and flushes it to the disk before returning.
func writeDurably(_ data: Data, to path: String) throws {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    guard fd >= 0 else { throw CheckpointError.writeFailed("cannot create \(path): \(String(cString: strerror(errno)))") }
    defer { close(fd) }
    try data.withUnsafeBytes { raw in
        var done = 0
        while done < raw.count {
            let n = write(fd, raw.baseAddress! + done, raw.count - done)
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw CheckpointError.writeFailed("cannot write \(path): \(String(cString: strerror(errno)))") }
            done += n
        }
    }
    guard fsync(fd) == 0 else { throw CheckpointError.writeFailed("cannot flush \(path): \(String(cString: strerror(errno)))") }
}

/// Flushes a folder's entries (new files, renames) to the disk.
func syncDirectory(_ path: String) {
    let fd = open(path, O_RDONLY)
    guard fd >= 0 else { return }
    fsync(fd)
    close(fd)
}

/// Renames atomically, or fails naming both paths.
func renameAtomically(_ from: String, _ to: String) throws {
    guard rename(from, to) == 0 else {
        throw CheckpointError.writeFailed("cannot rename \(from) to \(to): \(String(cString: strerror(errno)))")
    }
}
