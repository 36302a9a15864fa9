import ArgumentParser
import Checkpoint
import Data
import Foundation
import Logging
import Methods
import NN
import TensorCore

/// Options every command shares.
struct CommonOptions: ParsableArguments {
    @Option(help: "Kernel threads in this process (default: all cores; 1 per rank under MPI).")
    var threads: Int?

    @Option(help: "Convolution kernels: auto (AVX-512 where the processor has it), avx512 or blas.")
    var kernels: KernelChoice = .auto

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error.")
    var logLevel: Logger.Level = .info

    enum KernelChoice: String, ExpressibleByArgument, CaseIterable { case auto, avx512, blas }

    func validate() throws {
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1, got \(threads)") }
        if kernels == .avx512 && !ConvolutionKernels.processorHasAVX512 {
            throw ValidationError("--kernels avx512: this processor lacks AVX-512 (F, CD, BW, DQ, VL); use auto or blas")
        }
    }

    func setUp(label: String) -> Logger {
        Compute.setThreads(threads ?? ProcessInfo.processInfo.activeProcessorCount)
        switch kernels {
        case .auto: Compute.convolutionKernels = .detect()
        case .avx512: Compute.convolutionKernels = .avx512
        case .blas: Compute.convolutionKernels = .blas
        }
        LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
        var logger = Logger(label: label)
        logger.logLevel = logLevel
        return logger
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}

struct DataOptions: ParsableArguments {
    @Option(name: .customLong("data-dir"),
            help: "Folder with the Fashion-MNIST IDX files (default: where Debian's dataset-fashion-mnist puts them).")
    var dataDirectory: String?

    func load(_ split: Dataset.Split) throws -> Dataset {
        try FashionMNIST.load(split: split, directory: dataDirectory)
    }
}

@main
struct ACQDist: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "acq-dist",
        abstract: "Data-free low-bit quantization (ACQ, GDFQ) on a data-parallel CPU runtime.",
        subcommands: [Eval.self, Pretrain.self, Finetune.self, Quantize.self, DataFree.self, Diagnose.self, Methods.self, CheckpointCommand.self, Bench.self, BenchParallel.self, BenchCheckpoint.self],
        defaultSubcommand: DataFree.self)

    /// Runs a command body; a failure becomes one line on stderr and exit status 1.
    static func reportingErrors(_ body: () throws -> Void) throws {
        do {
            try body()
        } catch let error as ExitCode {
            throw error
        } catch let stop as RunStopped {
            FileHandle.standardError.write(Data("acq-dist: \(stop)\n".utf8))
        } catch {
            FileHandle.standardError.write(Data("acq-dist: error: \(error)\n".utf8))
            throw ExitCode.failure
        }
    }
}

struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Test accuracy of a model file on Fashion-MNIST.")
    static let shippedTeacher = "models/resnet20-fashion-mnist.safetensors"

    @Option(help: "The model file (safetensors written by `acq-dist pretrain`).")
    var model: String = Eval.shippedTeacher
    @Option(help: "Evaluate this quantized student (from `acq-dist quantize`) instead of --model.") var student: String?
    @Option(help: "Evaluate this integer model (from `quantize --export`) in integer arithmetic instead of --model.")
    var integer: String?
    @OptionGroup var data: DataOptions
    @OptionGroup var common: CommonOptions

    func run() throws {
        let logger = common.setUp(label: "eval")
        try ACQDist.reportingErrors {
            if student != nil || integer != nil {
                return try evaluateQuantized(student: student, integer: integer, data: data, logger: logger)
            }
            let url = URL(fileURLWithPath: model)
            guard FileManager.default.fileExists(atPath: url.path) else {
                throw RunError("model file \(model) does not exist")
            }
            let (net, metadata) = try ModelFile.load(url, expectedRole: "teacher")
            let test = try data.load(.test)
            guard metadata.imageShape == [test.channels, test.height, test.width] else {
                throw RunError("\(model) takes images \(metadata.imageShape), \(test.name) has [\(test.channels), \(test.height), \(test.width)]")
            }
            let progress = Progress(label: "eval", total: test.count, logger: logger)
            let start = Date()
            let result = evaluate(net, on: test, progress: progress)
            let seconds = Date().timeIntervalSince(start)
            print(String(format: "%@ on %@ test (%d images): accuracy %.2f%%, loss %.4f (%.1f s)",
                         model, test.name, test.count, 100 * result.accuracy, result.loss, seconds))
            logger.debug("recorded accuracy in file: \(metadata.notes["test_accuracy"] ?? "none")")
        }
    }
}

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Training-step and inference throughput of ResNet-20, with PyTorch's beside it.")

    @Option(help: "Batch size.") var batch = 128
    @Option(help: "Input shapes to measure, CxHxW, comma-separated.") var inputs = "1x28x28,3x32x32"
    @Option(help: "Timed repeats (the median is reported).") var repeats = 5
    @Option(help: "Steps per timed repeat.") var iterations = 5
    @Flag(name: .customLong("convbn-modes"),
          help: "Instead: one student training step per conv+BN mode (train, eval, tune, deploy): time, tape bytes, peak memory.")
    var convBNModes = false
    @Option(help: "Teacher whose copy is the student of --convbn-modes (default: the shipped one, else random).")
    var model: String = Eval.shippedTeacher
    @Flag(name: .customLong("acq"), help: "Instead: one ACQ iteration (generator step + student step, W4A4) beside PyTorch's.")
    var acqIteration = false
    @Option(name: .customLong("torch-acq"),
            help: "Command that runs the PyTorch ACQ iteration (scripts/torch/acq_iteration.py with a PyTorch python); empty to skip.")
    var torchACQ: String = "$HOME/.torch-ref/bin/python scripts/torch/acq_iteration.py"
    /// Each mode runs in a process of its own so that its peak memory is its own.
    @Option(name: .customLong("convbn-mode-only"), help: .hidden) var convBNModeOnly: Mode?
    @Option(name: .customLong("torch-ref"),
            help: "Command that prints PyTorch's figures (shared/tools/torch-ref); empty to skip.")
    var torchReference: String = "../shared/tools/torch-ref"
    @Option(name: .customLong("torch-runs"), help: "Runs of the PyTorch reference per input (the median is reported).")
    var torchRuns = 5
    @Flag(name: .customLong("compare-torch"), help: "Fail instead of showing acq-dist alone when the PyTorch reference does not run.")
    var compareTorch = false
    @OptionGroup var common: CommonOptions

    func run() throws {
        let logger = common.setUp(label: "bench")
        try ACQDist.reportingErrors {
            if convBNModes { return try runConvBNModes() }
            if acqIteration { return try runACQIteration() }
            let shapes = try inputs.split(separator: ",").map { spec -> [Int] in
                let dims = spec.split(separator: "x").compactMap { Int($0) }
                guard dims.count == 3, dims[1] == dims[2], dims.allSatisfy({ $0 > 0 }) else {
                    throw ValidationError("--inputs takes CxHxW with H == W, e.g. 1x28x28; got '\(spec)'")
                }
                return dims
            }
            guard torchRuns >= 1 else { throw ValidationError("--torch-runs must be at least 1, got \(torchRuns)") }
            guard !(compareTorch && torchReference.isEmpty) else { throw ValidationError("--compare-torch needs --torch-ref") }
            let ceiling = median(measureSGEMMCeiling(threads: Compute.threads))
            print("acq-dist bench: ResNet-20, batch \(batch), \(Compute.threads) thread(s), \(Compute.convolutionKernels.rawValue) convolution kernels; acq-dist: median of \(repeats) x \(iterations) steps, PyTorch: median of \(torchRuns) runs of its script")
            print(String(format: "OpenBLAS SGEMM ceiling (1024^3, %d thread(s), median of 7): %.1f GFLOP/s", Compute.threads, ceiling))
            print("input      what        acq-dist img/s   torch img/s   ratio   acq-dist GFLOP/s (of ceiling)   torch GFLOP/s")
            for shape in shapes {
                let config = ResNetConfig(depth: 20, inChannels: shape[0], classes: 10)
                var b = ThroughputBenchmark(config: config, batch: batch, imageSize: shape[1])
                b.repeats = repeats
                b.iterations = iterations
                let ours = b.run()
                var runs: [(train: Double, inference: Double)] = []
                if !torchReference.isEmpty {
                    for _ in 0..<torchRuns {
                        guard let r = runTorchReference(torchReference, threads: Compute.threads, batch: batch, input: shape, logger: logger) else { break }
                        runs.append(r)
                    }
                    if compareTorch && runs.count < torchRuns {
                        throw RunError("bench --compare-torch: the PyTorch reference '\(torchReference)' did not run")
                    }
                }
                let name = shape.map(String.init).joined(separator: "x")
                let work = [FLOPCount.resnetTrainingStep(config, imageSize: shape[1]), FLOPCount.resnetForward(config, imageSize: shape[1])]
                for (index, (what, mine)) in [("train step", ours.trainImagesPerSecond), ("inference", ours.inferenceImagesPerSecond)].enumerated() {
                    let m = median(mine)
                    let theirs = runs.isEmpty ? nil : median(runs.map { index == 0 ? $0.train : $0.inference })
                    let t = theirs.map { String(format: "%11.1f", $0) } ?? "          -"
                    let r = theirs.map { String(format: "%6.2fx", m / $0) } ?? "      -"
                    let gflops = m * work[index] / 1e9
                    let tg = theirs.map { String(format: "%8.1f", $0 * work[index] / 1e9) } ?? "       -"
                    print(String(format: "%-10@ %-11@ %14.1f   %@   %@   %8.1f (%4.0f%%)                %@", name, what, m, t, r,
                                 gflops, 100 * gflops / ceiling, tg))
                }
            }
        }
    }
}

extension Mode: ExpressibleByArgument {}

extension Bench {
    func runACQIteration() throws {
        let url = URL(fileURLWithPath: model)
        let teacher = FileManager.default.fileExists(atPath: url.path) ? try ModelFile.load(url).0 : ResNet(ResNetConfig(), seed: 0)
        let acqBatch = batch == 128 ? 64 : batch
        print("acq-dist bench --acq: one ACQ iteration (generator step + W4A4 student step), batch \(acqBatch), \(Compute.threads) thread(s), median of \(repeats) x \(iterations)")
        let ours = try benchmarkACQIteration(teacher: teacher, batch: acqBatch, iterations: iterations, repeats: repeats)
        var theirs: Double?
        if !torchACQ.isEmpty {
            // The PyTorch side takes acq-dist's loss weights, so the two iterations compute the same loss.
            let w = DataFreeConfig().acq
            let out = try? runShell("\(torchACQ) --threads \(Compute.threads) --batch \(acqBatch) --repeats \(repeats) --iterations \(iterations)"
                                    + " --weights \(w.bnsWeight) \(w.acmWeight) \(w.pairWeight) \(w.consistencyWeight)")
            theirs = out?.split(separator: "\n").first { $0.hasPrefix("acq_iteration_s ") }.flatMap { Double($0.split(separator: " ")[1]) }
            if theirs == nil { FileHandle.standardError.write(Data("bench: the PyTorch ACQ iteration did not run ('\(torchACQ)'); showing acq-dist alone\n".utf8)) }
        }
        print(String(format: "acq-dist  %.4f s/iteration (generator %.4f, student %.4f)", median(ours.total), median(ours.generator), median(ours.student)))
        if let theirs {
            print(String(format: "torch     %.4f s/iteration; acq-dist is %.2fx PyTorch's speed", theirs, theirs / median(ours.total)))
        }
    }

    /// Runs `command` with /bin/sh; returns its standard output (nil status is an error).
    func runShell(_ command: String) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = ["-c", command]
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { throw RunError("'\(command)' exited with \(p.terminationStatus)") }
        return String(decoding: data, as: UTF8.self)
    }

    func runConvBNModes() throws {
        var bench = ConvBNModeBenchmark()
        bench.batch = batch
        bench.repeats = repeats
        let url = URL(fileURLWithPath: model)
        let haveTeacher = FileManager.default.fileExists(atPath: url.path)
        if let only = convBNModeOnly {
            let row = try bench.run(modes: [only]) { haveTeacher ? try ModelFile.load(url).0 : ResNet(ResNetConfig(), seed: 0) }[0]
            print("convbn-row \(only.rawValue) \(median(row.secondsPerStep)) \(row.tapeBytes) \(row.peakResidentBytes ?? -1)")
            return
        }
        print("acq-dist bench --convbn-modes: ResNet-20 student step (forward, backward, SGD), batch \(batch), \(Compute.threads) thread(s), \(haveTeacher ? model : "random weights"), median of \(repeats); each mode in its own process")
        var rows: [(mode: String, seconds: Double, tape: Double, rss: Double)] = []
        for mode in [Mode.train, .eval, .tune, .deploy] {
            let out = try runSelf(["bench", "--convbn-modes", "--convbn-mode-only", mode.rawValue, "--model", model,
                                   "--batch", "\(batch)", "--repeats", "\(repeats)", "--threads", "\(Compute.threads)",
                                   "--kernels", Compute.convolutionKernels.rawValue])
            guard let line = out.split(separator: "\n").first(where: { $0.hasPrefix("convbn-row ") }) else {
                throw RunError("bench --convbn-modes: the \(mode.rawValue) run printed no result")
            }
            let f = line.split(separator: " ")
            rows.append((String(f[1]), Double(f[2]) ?? .nan, Double(f[3]) ?? .nan, Double(f[4]) ?? .nan))
        }
        let eval = rows.first { $0.mode == "eval" }!
        print("mode      ms/step   vs eval   tape MB   vs eval   peak RSS MB")
        for r in rows {
            print(String(format: "%-7@ %9.1f   %+6.1f%%  %8.2f   %+6.1f%%   %9.1f", r.mode, 1000 * r.seconds,
                         100 * (r.seconds / eval.seconds - 1), r.tape / 1_048_576, 100 * (r.tape / eval.tape - 1),
                         r.rss / 1_048_576))
        }
    }

    /// Runs this executable with `arguments`; returns its standard output.
    func runSelf(_ arguments: [String]) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        p.arguments = arguments
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { throw RunError("bench: '\(arguments.joined(separator: " "))' exited with \(p.terminationStatus)") }
        return String(decoding: data, as: UTF8.self)
    }
}

/// Runs the PyTorch reference `repeats`... once per call; returns its images/s (train, inference).
func runTorchReference(_ command: String, threads: Int, batch: Int, input: [Int], logger: Logger)
    -> (train: Double, inference: Double)? {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/bin/sh")
    let shape = input.map(String.init).joined(separator: "x")
    p.arguments = ["-c", "\(command) --threads \(threads) --batch \(batch) --input \(shape)"]
    let out = Pipe()
    p.standardOutput = out
    do { try p.run() } catch {
        logger.warning("PyTorch reference '\(command)' did not start: \(error)")
        return nil
    }
    let data = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    let text = String(decoding: data, as: UTF8.self)
    func figure(_ key: String) -> Double? {
        guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix(key) }),
              let r = line.range(of: "images/s ") else { return nil }
        return Double(line[r.upperBound...].trimmingCharacters(in: .whitespaces))
    }
    guard p.terminationStatus == 0, let t = figure("train_step_s"), let i = figure("eval_forward_s") else {
        logger.warning("PyTorch reference '\(command)' failed (status \(p.terminationStatus)); showing acq-dist alone")
        return nil
    }
    return (t, i)
}
