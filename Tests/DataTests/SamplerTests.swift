import Data
import Testing

@Suite struct SamplerTests {
    @Test func permutationIsAPermutationFixedBySeedAndEpoch() {
        let sampler = EpochSampler(count: 1000, seed: 42)
        let p0 = sampler.permutation(epoch: 0)
        #expect(p0.sorted() == Array(0..<1000))
        #expect(p0 != Array(0..<1000))
        #expect(EpochSampler(count: 1000, seed: 42).permutation(epoch: 0) == p0)
        #expect(sampler.permutation(epoch: 1) != p0)
        #expect(EpochSampler(count: 1000, seed: 43).permutation(epoch: 0) != p0)
        #expect(EpochSampler(count: 10, seed: 42, shuffle: false).permutation(epoch: 3) == Array(0..<10))
    }

    @Test func globalBatchesRunAcrossEpochsDroppingTheRemainder() {
        let sampler = EpochSampler(count: 10, seed: 7)
        #expect(sampler.stepsPerEpoch(batchSize: 3) == 3)
        let epoch0 = sampler.permutation(epoch: 0)
        let epoch1 = sampler.permutation(epoch: 1)
        #expect(sampler.globalBatch(step: 0, batchSize: 3) == Array(epoch0[0..<3]))
        #expect(sampler.globalBatch(step: 2, batchSize: 3) == Array(epoch0[6..<9]))
        #expect(sampler.globalBatch(step: 3, batchSize: 3) == Array(epoch1[0..<3]))
        #expect(sampler.globalBatch(step: 1, batchSize: 3) == Array(epoch0[3..<6]))
        #expect(sampler.epoch(ofStep: 5, batchSize: 3) == 1)

        let oneEpoch = (0..<3).flatMap { sampler.globalBatch(step: $0, batchSize: 3) }
        #expect(Set(oneEpoch).count == 9)
    }

    @Test func shardsOfTenOverThreeAndSevenOverFour() {
        #expect((0..<3).map { EpochSampler.shard(of: 0..<10, rank: $0, size: 3) } == [0..<4, 4..<7, 7..<10])
        #expect((0..<4).map { EpochSampler.shard(of: 0..<7, rank: $0, size: 4) } == [0..<2, 2..<4, 4..<6, 6..<7])
        #expect((0..<4).map { EpochSampler.shard(of: 20..<27, rank: $0, size: 4) } == [20..<22, 22..<24, 24..<26, 26..<27])
    }

    @Test func shardsTileEveryBatchWithNearEqualSizes() {
        for n in 0...40 {
            for size in 1...9 {
                let shards = (0..<size).map { EpochSampler.shard(of: 5..<(5 + n), rank: $0, size: size) }
                #expect(shards.first?.lowerBound == 5 && shards.last?.upperBound == 5 + n)
                #expect(zip(shards, shards.dropFirst()).allSatisfy { $0.upperBound == $1.lowerBound })
                let sizes = shards.map(\.count)
                #expect(sizes.max()! - sizes.min()! <= 1 && sizes == sizes.sorted(by: >), "\(n) over \(size): \(sizes)")
            }
        }
    }
}
