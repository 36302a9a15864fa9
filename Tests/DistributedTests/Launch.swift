import Foundation
import Testing

/// Runs programs for the MPI tests: the built `acq-dist` and `acq-dist-mpi-tests` (beside the
/// test bundle) under `scripts/mpirun.sh`, `scripts/simulate-cluster.sh` or plain `mpirun`.
enum Launch {
    /// The folder of the build products (the test bundle's).
    static var products: URL { URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent() }
    /// The package root, from this file's path (Tests/DistributedTests/Launch.swift).
    static var packageRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    static func binary(_ name: String) throws -> URL {
        let url = products.appendingPathComponent(name)
        guard FileManager.default.isExecutableFile(atPath: url.path) else {
            throw LaunchError("\(name) is not built at \(url.path): run `swift build -c release --build-tests` first")
        }
        return url
    }

    static func script(_ name: String) -> URL { packageRoot.appendingPathComponent("scripts").appendingPathComponent(name) }

    struct Result {
        var status: Int32
        var out: String
        var err: String
        var seconds: Double
        /// stderr lines that are not empty.
        var errorLines: [String] { err.split(separator: "\n").map(String.init).filter { !$0.isEmpty } }
    }

    /// Starts `executable` with `arguments`; output goes to files (no pipe can fill and block it).
    static func start(_ executable: URL, _ arguments: [String], in folder: URL,
                      environment: [String: String] = [:]) throws -> RunningProcess {
        try RunningProcess(executable, arguments, folder: folder, environment: environment)
    }

    /// Runs to completion; a run that outlives `timeout` seconds is killed and reported.
    static func run(_ executable: URL, _ arguments: [String], in folder: URL, timeout: Double = 240,
                    environment: [String: String] = [:]) throws -> Result {
        try start(executable, arguments, in: folder, environment: environment).wait(timeout: timeout)
    }

    /// A fresh folder for one test's files.
    static func folder(_ label: String) throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("acq-dist-mpi-\(label)-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}

final class RunningProcess {
    let process = Process()
    let outURL: URL, errURL: URL
    let started = Date()
    let commandLine: String

    init(_ executable: URL, _ arguments: [String], folder: URL, environment extra: [String: String] = [:]) throws {
        let tag = UUID().uuidString.prefix(8)
        outURL = folder.appendingPathComponent("stdout-\(tag).txt")
        errURL = folder.appendingPathComponent("stderr-\(tag).txt")
        _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
        process.executableURL = executable
        process.arguments = arguments
        var environment = ProcessInfo.processInfo.environment
        environment["OPENBLAS_NUM_THREADS"] = "1"
        process.environment = environment.merging(extra) { $1 }
        process.standardOutput = try FileHandle(forWritingTo: outURL)
        process.standardError = try FileHandle(forWritingTo: errURL)
        commandLine = ([executable.path] + arguments).joined(separator: " ")
        try process.run()
    }

    func wait(timeout: Double) throws -> Launch.Result {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(50_000) }
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
            throw LaunchError("timed out after \(Int(timeout)) s: \(commandLine)\n\(text(errURL))")
        }
        return Launch.Result(status: process.terminationStatus, out: text(outURL), err: text(errURL),
                             seconds: Date().timeIntervalSince(started))
    }

    /// What the process has written to stderr so far.
    var errorSoFar: String { text(errURL) }

    private func text(_ url: URL) -> String { (try? String(contentsOf: url, encoding: .utf8)) ?? "" }
}

struct LaunchError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
