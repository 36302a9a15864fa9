import Foundation
import Logging

/// Progress of long work: an updating line when stderr is a terminal, a log line every
/// `logInterval` seconds otherwise (files, CI, mpirun's forwarded output).
public final class Progress {
    let label: String
    let total: Int
    let logger: Logger
    let isTerminal: Bool
    let logInterval: Double
    let start = Date()
    var lastLog = Date.distantPast
    var lastLineLength = 0

    public init(label: String, total: Int, logger: Logger, logInterval: Double = 15,
                isTerminal: Bool = isatty(STDERR_FILENO) != 0) {
        (self.label, self.total, self.logger, self.logInterval, self.isTerminal) =
            (label, total, logger, logInterval, isTerminal)
    }

    /// Reports that `done` of `total` units are finished, with a short status.
    public func update(_ done: Int, _ status: String = "") {
        let elapsed = Date().timeIntervalSince(start)
        let eta = done > 0 ? elapsed / Double(done) * Double(total - done) : 0
        let line = "\(label) \(done)/\(total) (\(100 * done / Swift.max(total, 1))%) \(status) | \(Self.duration(elapsed)) elapsed, eta \(Self.duration(eta))"
        if isTerminal {
            let pad = String(repeating: " ", count: Swift.max(0, lastLineLength - line.count))
            FileHandle.standardError.write(Data(("\r" + line + pad).utf8))
            lastLineLength = line.count
        } else if Date().timeIntervalSince(lastLog) >= logInterval || done == total {
            logger.info("\(line)")
            lastLog = Date()
        }
    }

    public func finish() {
        if isTerminal && lastLineLength > 0 { FileHandle.standardError.write(Data("\n".utf8)) }
    }

    static func duration(_ s: Double) -> String {
        let t = Int(s.rounded())
        return t >= 3600 ? "\(t / 3600)h\(t % 3600 / 60)m" : t >= 60 ? "\(t / 60)m\(t % 60)s" : "\(t)s"
    }
}
