import Autodiff
import Distributed
import Foundation
import NN
import Testing
import TensorCore

/// The data-parallel runtime with the single-process communicator: no MPI, same code paths.
@Suite struct SingleProcessTests {
    /// A small ResNet with gradients from one backward on a fixed batch.
    func model() -> (ResNet, ParameterArena, Variable) {
        let net = ResNet(ResNetConfig(depth: 20, inChannels: 1, classes: 10), seed: 5)
        let arena = ParameterArena(model: net)
        net.setMode(.train)
        let x = Tensor.randomNormal([4, 1, 12, 12], seed: 9)
        let loss = crossEntropy(net(Variable(x)), labels: [1, 7, 3, 3])
        return (net, arena, loss)
    }

    @Test(arguments: [0.001, 0.05, 1.0, 100.0])
    func bucketedBackwardGivesTheGatheredGradients(bucketMegabytes: Double) throws {
        let (_, arena, loss) = model()
        loss.backward()
        arena.gatherGradients()
        let expected = arena.gradients.scalars

        let (net2, arena2, loss2) = model()
        let parallel = try DataParallel(model: net2, arena: arena2, communicator: SingleProcessCommunicator(),
                                        options: DataParallel.Options(bucketMegabytes: bucketMegabytes))
        try parallel.backward(loss2, localCount: 4, globalCount: 4)
        #expect(arena2.gradients.scalars == expected)
    }

    @Test func localShareScalesTheGradient() throws {
        let (_, arena, loss) = model()
        loss.backward()
        arena.gatherGradients()
        let full = arena.gradients.scalars

        let (net2, arena2, loss2) = model()
        let parallel = try DataParallel(model: net2, arena: arena2, communicator: SingleProcessCommunicator())
        try parallel.backward(loss2, localCount: 1, globalCount: 4)
        let quarter = arena2.gradients.scalars
        for i in stride(from: 0, to: full.count, by: 997) {
            #expect(abs(quarter[i] - full[i] / 4) <= 1e-6 * max(abs(full[i]), 1e-3))
        }
    }

    @Test func aFrozenParameterGetsZerosAndTheOthersTheirGradients() throws {
        let net = ResNet(ResNetConfig(depth: 20, inChannels: 1, classes: 10), seed: 5)
        let arena = ParameterArena(model: net)
        // Frozen: backward never reports it, so `finish` must fill its range (stale values out).
        arena.entries[0].parameter.requiresGrad = false
        arena.gradients.withSharedMutableBufferPointer { $0.update(repeating: .nan) }
        net.setMode(.train)
        let loss = crossEntropy(net(Variable(Tensor.randomNormal([4, 1, 12, 12], seed: 9))), labels: [1, 7, 3, 3])
        let parallel = try DataParallel(model: net, arena: arena, communicator: SingleProcessCommunicator(),
                                        options: DataParallel.Options(bucketMegabytes: 0.01))
        try parallel.backward(loss, localCount: 4, globalCount: 4)
        let g = arena.gradients.scalars
        let stem = arena.entries[0].range
        #expect(g[stem].allSatisfy { $0 == 0 })
        #expect(g[stem.upperBound...].allSatisfy { $0.isFinite })
        #expect(g[stem.upperBound...].contains { $0 != 0 })
    }

    @Test func bucketsCoverEveryParameterOnceFromTheLastBackwards() {
        let (_, arena, _) = model()
        for bytes in [1, 4096, 100_000, 1 << 30] {
            let plan = GradientBucketPlan(arena: arena, bucketBytes: bytes)
            let entries = plan.buckets.flatMap(\.entries)
            #expect(entries == Array(arena.entries.indices.reversed()))
            #expect(plan.buckets.map(\.range.count).reduce(0, +) == arena.count)
            for (b, bucket) in plan.buckets.enumerated() {
                for e in bucket.entries {
                    #expect(plan.bucketOfEntry[e] == b)
                    #expect(bucket.range.contains(arena.entries[e].range.lowerBound))
                }
            }
        }
        #expect(GradientBucketPlan(arena: arena, bucketBytes: 1 << 30).buckets.count == 1)
        #expect(GradientBucketPlan(arena: arena, bucketBytes: 1).buckets.count == arena.entries.count)
    }

    @Test func synchronisedBatchNormOnOneProcessIsBatchNorm() {
        let x = Tensor.randomNormal([5, 3, 4, 4], seed: 1)
        let plain = BatchNorm2d(3), synced = BatchNorm2d(3)
        #expect(synchronizeBatchNorms(in: synced, over: SingleProcessCommunicator()) == 1)
        let a = plain(Variable(x)), b = synced(Variable(x))
        #expect(a.value.scalars == b.value.scalars)
        #expect(plain.runningVar.value.scalars == synced.runningVar.value.scalars)
    }

    @Test func synchronizeBatchNormsReachesEveryBatchNormOfAResNet() {
        let net = ResNet(ResNetConfig(depth: 20), seed: 0)
        let count = net.allLayers().filter { $0 is BatchNorm2d }.count
        #expect(synchronizeBatchNorms(in: net, over: SingleProcessCommunicator()) == count)
        #expect(count == 21)
    }

    @Test func aConfigurationThatDiffersNamesTheRankAndTheFields() throws {
        struct Config: Codable { var batch: Int; var lr: Double; var nested: [String: Int] }
        let mine = Config(batch: 24, lr: 0.1, nested: ["x": 1])
        let theirs = Config(batch: 32, lr: 0.1, nested: ["x": 2])
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let theirJSON = Array(try encoder.encode(theirs))
        var hash = FNV1a()
        hash.add(bytes: theirJSON)
        // Rank 0 of two; the peer's hash, then its JSON text.
        let comm = ScriptedPeer(peer: [[Int64(bitPattern: hash.value)], theirJSON])
        do {
            try StartupChecks.verifySameConfiguration(mine, over: comm)
            Issue.record("differing configurations passed")
        } catch let error as StartupCheckError {
            #expect(error.description == "rank 1: its configuration differs from rank 0's: batch is 32, rank 0 has 24; nested.x is 2, rank 0 has 1")
        }
        try StartupChecks.verifySameConfiguration(mine, over: SingleProcessCommunicator())
    }

    @Test func aBatchSmallerThanTheRanksIsRefusedNamingTheFirstIdleRank() {
        #expect(throws: Never.self) { try StartupChecks.verifyGlobalBatch(4, ranks: 4) }
        do {
            try StartupChecks.verifyGlobalBatch(5, ranks: 8)
            Issue.record("a batch of 5 on 8 ranks passed")
        } catch let error as StartupCheckError {
            #expect(error.rank == 5)
            #expect(error.description == "rank 5: a global batch of 5 samples leaves ranks 5-7 of 8 without samples; use a batch of at least 8 or fewer ranks")
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    @Test func timedCommunicatorCountsTimeInCalls() throws {
        let timed = TimedCommunicator(SingleProcessCommunicator())
        var v: [Double] = [1, 2]
        try timed.allReduceSum(&v)
        #expect(v == [1, 2])
        #expect(timed.seconds >= 0)
        timed.reset()
        #expect(timed.seconds == 0)
    }
}

/// Rank 0 of a two-rank job whose peer's all-gather contributions are given in advance.
final class ScriptedPeer: Communicator {
    var peer: [Any]
    init(peer: [Any]) { self.peer = peer }
    var rank: Int { 0 }
    var size: Int { 2 }
    func allGather<T: CommunicatorScalar>(_ values: [T]) throws -> [[T]] { [values, peer.removeFirst() as! [T]] }
    func allReduceSum<T: CommunicatorScalar>(_ buffer: UnsafeMutableBufferPointer<T>) throws { unexpected() }
    func startAllReduceSum<T: CommunicatorScalar>(_ buffer: UnsafeMutableBufferPointer<T>) throws -> PendingOperation { unexpected() }
    func broadcast<T: CommunicatorScalar>(_ buffer: UnsafeMutableBufferPointer<T>, root: Int) throws { unexpected() }
    func barrier() throws { unexpected() }
    func abort(_ message: String) -> Never { preconditionFailure("abort: \(message)") }
    func unexpected() -> Never { preconditionFailure("the configuration check uses all-gathers only") }
}
