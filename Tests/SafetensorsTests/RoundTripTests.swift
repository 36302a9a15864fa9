import Foundation
import Safetensors
import TensorCore
import Testing

@Suite struct RoundTripTests {
    @Test func writeThenReadKeepsOrderDTypesMetadataAndValues() throws {
        var file = SafetensorsFile(metadata: ["epoch": "3", "note": "quote \" backslash \\ newline \n tab \t µ"])
        let weight = Tensor(shape: [2, 3, 2, 2], scalars: (0..<24).map { Float($0) * 0.37 - 4 })
        file.set("conv.weight", weight)
        file.set("bn.num_batches_tracked", .scalar(12345), dtype: .i64)
        file.set("empty", Tensor(shape: [0, 4]))
        file.set("labels", Tensor(shape: [3], scalars: [-1, 0, 7]), dtype: .i32)
        file.set("pixels", Tensor(shape: [4], scalars: [0, 1, 128, 255]), dtype: .u8)
        file.set("wide", Tensor(shape: [2], scalars: [0.1, -3e38]), dtype: .f64)
        file.set("half", Tensor(shape: [5], scalars: [1, -2, 0.5, 65504, 0x1p-24]), dtype: .f16)
        file.set("brain", Tensor(shape: [3], scalars: [1, -0.5, 0x1p100]), dtype: .bf16)

        try withScratchDirectory { dir in
            let url = dir.appendingPathComponent("model.safetensors")
            try SafetensorsFile(metadata: ["stale": "yes"]).write(to: url)
            try file.write(to: url)
            #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["model.safetensors"])

            let bytes = try Data(contentsOf: url)
            let headerLength = bytes.prefix(8).reversed().reduce(0) { $0 << 8 | Int($1) }
            #expect((8 + headerLength) % 8 == 0, "data buffer should start 8-byte aligned")

            let back = try SafetensorsFile.read(contentsOf: url)
            #expect(back.names == file.names)
            #expect(back.metadata == file.metadata)
            #expect(back.dtypes == file.dtypes)
            for (name, tensor) in file.tensors {
                let read = try back.tensor(name, shape: tensor.shape)
                #expect(read.scalars == tensor.scalars, "\(name)")
            }
            #expect(back.dtypes["bn.num_batches_tracked"] == .i64)
        }
    }

    @Test func setReplacesInPlace() {
        var file = sampleFile()
        file.set("layer.weight", .scalar(7), dtype: .f16)
        #expect(file.names == ["layer.weight", "layer.bias"])
        #expect(file["layer.weight"]?.scalars == [7])
        #expect(file.dtypes["layer.weight"] == .f16)
    }

    @Test func readsHandAssembledBytesOfEveryDType() throws {
        // Unpadded header and unaligned tensors, as other writers may produce.
        var data: [UInt8] = []
        var fields: [String] = []
        func add(_ name: String, _ dtype: String, _ shape: [Int], _ bytes: [UInt8]) {
            fields.append("\"\(name)\":{\"dtype\":\"\(dtype)\",\"shape\":\(shape),"
                + "\"data_offsets\":[\(data.count),\(data.count + bytes.count)]}")
            data += bytes
        }
        add("u8", "U8", [3], [0, 7, 255])
        add("f32", "F32", [2], littleEndianBytes([Float(1.5).bitPattern, Float(-2).bitPattern]))
        add("f64", "F64", [1], littleEndianBytes([Double(0.25).bitPattern]))
        add("f16", "F16", [4], littleEndianBytes([UInt16(0x3C00), 0xC000, 0x7BFF, 0x0001]))
        add("bf16", "BF16", [2], littleEndianBytes([UInt16(0x3F80), 0xBF00]))
        add("i64", "I64", [2], littleEndianBytes([Int64(-3), 1 << 20]))
        add("i32", "I32", [1, 1], littleEndianBytes([Int32(-70000)]))
        let header = "{\"__metadata__\":{\"format\":\"pt\"}," + fields.joined(separator: ",") + "}"
        let file = try SafetensorsFile(data: rawFile(header: header, data: data), source: "hand.safetensors")

        #expect(file.names == ["u8", "f32", "f64", "f16", "bf16", "i64", "i32"])
        #expect(file.metadata == ["format": "pt"])
        #expect(file["u8"]?.scalars == [0, 7, 255])
        #expect(file["f32"]?.scalars == [1.5, -2])
        #expect(file["f64"]?.scalars == [0.25])
        #expect(file["f16"]?.scalars == [1, -2, 65504, 0x1p-24])
        #expect(file["bf16"]?.scalars == [1, -0.5])
        #expect(file["i64"]?.scalars == [-3, 1_048_576])
        #expect(try file.tensor("i32", shape: [1, 1]).scalars == [-70000])
        #expect(file.dtypes["i64"] == .i64 && file.dtypes["bf16"] == .bf16)
    }

    @Test func halfPrecisionWritesRoundToNearestEven() throws {
        var file = SafetensorsFile()
        let halfInputs: [Float] = [1 + 0x1p-11, 1 + 3 * 0x1p-11, 65519, 65520, 1e-8, 3e-8, -0.0, .nan]
        file.set("f16", Tensor(shape: [8], scalars: halfInputs), dtype: .f16)
        file.set("bf16", Tensor(shape: [3], scalars: [1 + 0x1p-8, 1 + 3 * 0x1p-8, -.infinity]), dtype: .bf16)
        let back = try SafetensorsFile(data: file.serialized(), source: "rounding")
        let half = try back.tensor("f16").scalars
        #expect(Array(half.prefix(7)) == [1, 1 + 0x1p-9, 65504, .infinity, 0, 0x1p-24, 0])
        #expect(half[6].sign == .minus && half[7].isNaN)
        #expect(try back.tensor("bf16").scalars == [1, 1 + 0x1p-6, -.infinity])
    }

    @Test func integerDTypeRefusesFractionsAndLeavesNoFile() throws {
        var file = sampleFile()
        file.set("step", .scalar(0.5), dtype: .i64)
        try withScratchDirectory { dir in
            let url = dir.appendingPathComponent("bad.safetensors")
            let error = #expect(throws: SafetensorsError.self) { try file.write(to: url) }
            #expect(caseName(error) == "notRepresentable")
            #expect(error?.description.contains("bad.safetensors") == true)
            #expect(error?.description.contains("'step'") == true)
            let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir.path)
            #expect(leftovers.isEmpty)
        }
    }
}
