import Foundation
import Safetensors
import Testing
import TensorCore

// Integer tensors beyond float32's 2^24 (an integer model's int32 biases) survive a write and a
// read exactly; the float32 view of every tensor stays as before.
@Suite struct ExactIntegerTests {
    @Test func integersBeyondTwoToTheTwentyFourRoundTripExactly() throws {
        let big: [Int64] = [16_777_217, -2_147_483_648, 2_147_483_647, 0]
        var file = SafetensorsFile()
        file.setIntegers("bias", big, shape: [4], dtype: .i32)
        file.setIntegers("count", [9_007_199_254_740_993], shape: [], dtype: .i64)
        file.setIntegers("packed", [0, 255, 7], shape: [3], dtype: .u8)
        try withScratchDirectory { dir in
            let url = dir.appendingPathComponent("ints.safetensors")
            try file.write(to: url)
            let read = try SafetensorsFile.read(contentsOf: url)
            #expect(try read.integers("bias", shape: [4]) == big)
            #expect(try read.integers("count", shape: []) == [9_007_199_254_740_993])
            #expect(try read.integers("packed", shape: [3]) == [0, 255, 7])
            #expect(read["bias"]?.scalars == big.map(Float.init), "the float32 view")
            // A rewrite of a file read from disk keeps the exact values.
            try read.write(to: url)
            #expect(try SafetensorsFile.read(contentsOf: url).integers("bias", shape: [4]) == big)
        }
    }

    @Test func replacingATensorDropsItsExactValuesAndFloatTensorsHaveNone() throws {
        var file = SafetensorsFile(source: "f.safetensors")
        file.setIntegers("bias", [16_777_217], shape: [1], dtype: .i32)
        file.set("bias", Tensor(shape: [1], scalars: [3]), dtype: .i32)
        #expect(throws: SafetensorsError.self) { _ = try file.integers("bias", shape: [1]) }
        file.set("weight", Tensor(shape: [1], scalars: [0.5]))
        #expect(throws: SafetensorsError.unsupportedDType(file: "f.safetensors", tensor: "weight",
                                                          dtype: "F32 (an integer dtype is needed)")) {
            _ = try file.integers("weight", shape: [1])
        }
    }

    @Test func valuesOutsideTheDTypeAreRefusedOnWrite() throws {
        var file = SafetensorsFile(source: "f.safetensors")
        file.setIntegers("zp", [256], shape: [1], dtype: .u8)
        #expect(throws: SafetensorsError.notRepresentable(file: "f.safetensors", tensor: "zp", dtype: .u8, value: 256)) {
            _ = try file.serialized()
        }
    }
}
