// swift-tools-version:6.1
import PackageDescription

// Module graph (one-way): CBLAS, CPUKernelsAVX512 -> TensorCore -> Autodiff -> NN -> Checkpoint -> Quantization -> Methods -> acq-dist.
// Safetensors and Data depend on TensorCore only. See docs/architecture.md.
// Distributed (NN, and MPI through CMPI and CMPIShims) sits beside Checkpoint; ShardedCheckpoint (Distributed,
// Safetensors) and Imaging (zlib only) sit beside Quantization; Methods uses all of them.
let optimize: [SwiftSetting] = [.unsafeFlags(["-Ounchecked"], .when(configuration: .release))]

let package = Package(
    name: "acq-dist",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "acq-dist", targets: ["acq-dist"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
    ],
    targets: [
        .systemLibrary(name: "CBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CMPI", pkgConfig: "ompi-c",
                       providers: [.apt(["libopenmpi-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib",
                       providers: [.apt(["zlib1g-dev"])]),
        // Convolution kernels for AVX-512 processors, compiled for that instruction set; TensorCore
        // calls them only after checking the processor has it.
        .target(name: "CPUKernelsAVX512",
                swiftSettings: [.unsafeFlags(["-target-cpu", "skylake-avx512"])] + optimize),
        .target(name: "TensorCore", dependencies: ["CBLAS", "CPUKernelsAVX512"], swiftSettings: optimize),
        .target(name: "Autodiff", dependencies: ["TensorCore"], swiftSettings: optimize),
        .target(name: "NN", dependencies: ["Autodiff"], swiftSettings: optimize),
        .target(name: "Safetensors", dependencies: ["TensorCore"], swiftSettings: optimize),
        .target(name: "Checkpoint", dependencies: ["NN", "Safetensors"], swiftSettings: optimize),
        .target(name: "Data", dependencies: ["TensorCore", "CZlib"], swiftSettings: optimize),
        .target(name: "Imaging", dependencies: ["CZlib"], swiftSettings: optimize),
        // mpi.h's handles are macros over OpenMPI globals (MPI_COMM_WORLD, MPI_FLOAT, ...); these
        // one-line C functions hand them to Swift.
        .target(name: "CMPIShims", dependencies: ["CMPI"]),
        // Communicators (MPI and single-process), gradient buckets, synchronised batch norm.
        .target(name: "Distributed", dependencies: ["NN", "CMPI", "CMPIShims"], swiftSettings: optimize),
        // Sharded training-state checkpoints: one contiguous piece per rank, manifest, atomic commit.
        .target(name: "ShardedCheckpoint", dependencies: ["Distributed", "Safetensors", "CZlib"], swiftSettings: optimize),
        // Fake-quantized students, observers, and the integer model they export to.
        .target(name: "Quantization", dependencies: ["NN", "Checkpoint", "Safetensors"], swiftSettings: optimize),
        .target(name: "Methods",
                dependencies: ["NN", "Checkpoint", "Data", "Quantization", "Distributed", "ShardedCheckpoint", "Imaging",
                               .product(name: "Logging", package: "swift-log")],
                swiftSettings: optimize),
        .executableTarget(name: "acq-dist",
                          dependencies: ["Methods", "Distributed", "ShardedCheckpoint", "Safetensors",
                                         .product(name: "ArgumentParser", package: "swift-argument-parser"),
                                         .product(name: "Logging", package: "swift-log")],
                          swiftSettings: optimize),
        .target(name: "TestSupport", dependencies: ["Safetensors", "Autodiff"], path: "Tests/TestSupport",
                resources: [.copy("Fixtures")]),
        .testTarget(name: "TensorCoreTests", dependencies: ["TensorCore", "TestSupport"]),
        .testTarget(name: "AutodiffTests", dependencies: ["Autodiff", "TestSupport"]),
        .testTarget(name: "NNTests", dependencies: ["NN", "Checkpoint", "Safetensors", "Methods", "TestSupport"]),
        .testTarget(name: "SafetensorsTests", dependencies: ["Safetensors", "TestSupport"]),
        .testTarget(name: "CheckpointTests", dependencies: ["Checkpoint", "TestSupport"]),
        .testTarget(name: "DataTests", dependencies: ["Data", "TestSupport"]),
        .testTarget(name: "ImagingTests", dependencies: ["Imaging", "CZlib"]),
        .testTarget(name: "MethodsTests", dependencies: ["Methods", "NN", "Quantization", "TestSupport"]),
        .testTarget(name: "QuantizationTests",
                    dependencies: ["Quantization", "Methods", "Data", "Checkpoint", "Safetensors", "TestSupport"]),
        // Runs the built `acq-dist` binary as a user would: bad input must give one clear line.
        .testTarget(name: "CLITests", dependencies: ["Checkpoint", "Safetensors", "TestSupport"]),
        // Rank programs that DistributedTests starts under mpirun (not shipped to users).
        .executableTarget(name: "acq-dist-mpi-tests",
                          dependencies: ["Distributed", "Methods", "Data", "NN", "Checkpoint", "Safetensors",
                                         .product(name: "ArgumentParser", package: "swift-argument-parser")],
                          path: "Tests/MPIPrograms", swiftSettings: optimize),
        .testTarget(name: "DistributedTests",
                    dependencies: ["Distributed", "Methods", "Data", "NN", "Checkpoint", "Safetensors", "ShardedCheckpoint", "TestSupport"]),
    ],
    swiftLanguageModes: [.v5]
)
