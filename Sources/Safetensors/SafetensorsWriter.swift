import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension SafetensorsFile {
    /// The file's bytes: header length, space-padded JSON header, then the tensors back to back.
    public func serialized() throws -> Data { try serialized(reportingAs: source) }

    /// Writes atomically: a crash leaves either the old file or the complete new one, never a mix.
    public func write(to url: URL) throws {
        let path = url.path
        let data = try serialized(reportingAs: path)
        let directory = url.deletingLastPathComponent().path
        let temporary = "\(directory)/.\(url.lastPathComponent).\(UUID().uuidString).partial"
        do {
            try writeDurably(data, to: temporary, reportingAs: path)
            guard rename(temporary, path) == 0 else { throw posixFailure(path, "rename from \(temporary)") }
        } catch {
            unlink(temporary)
            throw error
        }
        // The rename lives in the directory, so it is only durable once the directory is synced.
        let fd = open(directory, O_RDONLY)
        if fd >= 0 {
            fsync(fd)
            close(fd)
        }
    }

    private func serialized(reportingAs file: String) throws -> Data {
        var fields: [String] = []
        if !metadata.isEmpty {
            let pairs = metadata.sorted { $0.key < $1.key }.map { jsonString($0.key) + ":" + jsonString($0.value) }
            fields.append("\"__metadata__\":{\(pairs.joined(separator: ","))}")
        }
        var end = 0
        for (name, tensor) in tensors {
            let dtype = dtypes[name, default: .f32]
            let begin = end
            end += tensor.count * dtype.byteSize
            let shape = tensor.shape.map(String.init).joined(separator: ",")
            fields.append("\(jsonString(name)):{\"dtype\":\"\(dtype.rawValue)\",\"shape\":[\(shape)],"
                + "\"data_offsets\":[\(begin),\(end)]}")
        }
        var header = Array("{\(fields.joined(separator: ","))}".utf8)
        // Pad so the data buffer starts 8-byte aligned, as the reference writer does.
        header += repeatElement(UInt8(ascii: " "), count: (8 - header.count % 8) % 8)

        var data = Data(count: 8 + header.count + end)
        try data.withUnsafeMutableBytes { out in
            out.storeBytes(of: UInt64(header.count).littleEndian, as: UInt64.self)
            UnsafeMutableRawBufferPointer(rebasing: out[8..<8 + header.count]).copyBytes(from: header)
            var position = 8 + header.count
            for (name, tensor) in tensors {
                let dtype = dtypes[name, default: .f32]
                let size = tensor.count * dtype.byteSize
                let destination = UnsafeMutableRawBufferPointer(rebasing: out[position..<position + size])
                if dtype.isInteger, let values = exactIntegers[name] {
                    try dtype.encodeIntegers(values, into: destination, tensor: name, file: file)
                } else {
                    try tensor.withUnsafeBufferPointer { try dtype.encode($0, into: destination, tensor: name, file: file) }
                }
                position += size
            }
        }
        return data
    }
}

private func writeDurably(_ data: Data, to temporary: String, reportingAs file: String) throws {
    let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
    guard fd >= 0 else { throw posixFailure(file, "create \(temporary)") }
    defer { close(fd) }
    try data.withUnsafeBytes { bytes in
        guard let base = bytes.baseAddress else { return }
        var done = 0
        while done < bytes.count {
            let n = write(fd, base + done, bytes.count - done)
            if n < 0 {
                if errno == EINTR { continue }
                throw posixFailure(file, "write \(temporary)")
            }
            done += n
        }
    }
    guard fsync(fd) == 0 else { throw posixFailure(file, "fsync \(temporary)") }
}

private func posixFailure(_ file: String, _ step: String) -> SafetensorsError {
    .writeFailed(file: file, reason: "\(step): \(String(cString: strerror(errno)))")
}

private func jsonString(_ s: String) -> String {
    var out = "\""
    for u in s.unicodeScalars {
        switch u {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case _ where u.value < 0x20:
            let hex = String(u.value, radix: 16)
            out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
        default: out.unicodeScalars.append(u)
        }
    }
    return out + "\""
}
