import Testing
import TensorCore

@Suite struct RandomTests {
    @Test func integersCoverTheirRangeUniformly() {
        var s = RandomStream(seed: 3, purpose: 1, step: 0, index: 0)
        var counts = [Int](repeating: 0, count: 7)
        for _ in 0..<7000 { counts[s.int(below: 7)] += 1 }
        #expect(counts.allSatisfy { $0 > 850 && $0 < 1150 }, "counts \(counts)")
    }

    @Test func streamsAreAddressedByCounterNotHistory() {
        var a = RandomStream(seed: 9, purpose: 2, step: 5, index: 11)
        var b = RandomStream(seed: 9, purpose: 2, step: 5, index: 11)
        var c = RandomStream(seed: 9, purpose: 2, step: 5, index: 12)
        let xa = (0..<10).map { _ in a.uniform() }, xb = (0..<10).map { _ in b.uniform() }
        let xc = (0..<10).map { _ in c.uniform() }
        #expect(xa == xb)
        #expect(xa != xc)
    }

    @Test func normalHasUnitMoments() {
        var s = RandomStream(seed: 1, purpose: 0, step: 0, index: 0)
        let v = (0..<20000).map { _ in Double(s.normal()) }
        let m = v.reduce(0, +) / Double(v.count)
        let sd = (v.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(v.count)).squareRoot()
        #expect(abs(m) < 0.03 && abs(sd - 1) < 0.03, "mean \(m) std \(sd)")
    }
}
