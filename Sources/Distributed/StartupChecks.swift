import Foundation

/// Checks run once at the start of a job, collectively: each failure is detected the same way
/// on every rank and thrown as a `StartupCheckError` naming the rank concerned, so the job ends
/// with one report instead of ranks computing different things or waiting for each other.
public enum StartupChecks {
    /// Every rank must run the same configuration. Each rank hashes its configuration's JSON
    /// (sorted keys) and the hashes are all-gathered; when one differs from rank 0's, the JSON
    /// texts are gathered too, to name the fields that differ.
    public static func verifySameConfiguration<C: Encodable>(_ configuration: C,
                                                             over communicator: any Communicator) throws {
        let json = try canonicalJSON(configuration)
        var hash = FNV1a()
        hash.add(bytes: json)
        let hashes = try communicator.allGather([Int64(bitPattern: hash.value)]).map { $0[0] }
        guard let odd = hashes.firstIndex(where: { $0 != hashes[0] }) else { return }
        // Every rank has seen the same hashes, so all of them take part in this gather.
        let texts = try communicator.allGather(json)
        let fields = differences(texts[0], texts[odd])
        let detail = fields.isEmpty ? "the JSON texts differ" : fields.prefix(4).joined(separator: "; ")
        throw StartupCheckError(rank: odd, cause: "its configuration differs from rank 0's: \(detail)")
    }

    /// A global batch must give every rank at least one sample (batch norm and the gradient
    /// average need local samples on every rank).
    public static func verifyGlobalBatch(_ count: Int, ranks: Int) throws {
        guard count < ranks else { return }
        let idle = count == ranks - 1 ? "rank \(count)" : "ranks \(count)-\(ranks - 1)"
        throw StartupCheckError(rank: count, cause: "a global batch of \(count) samples leaves \(idle) of \(ranks) without samples; use a batch of at least \(ranks) or fewer ranks")
    }

    static func canonicalJSON<C: Encodable>(_ value: C) throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return Array(try encoder.encode(value))
    }

    /// "field is X on this rank, Y on rank 0" for each leaf field that differs.
    static func differences(_ reference: [UInt8], _ other: [UInt8]) -> [String] {
        let a = flatten(try? JSONSerialization.jsonObject(with: Data(reference)))
        let b = flatten(try? JSONSerialization.jsonObject(with: Data(other)))
        return Set(a.keys).union(b.keys).sorted().compactMap { key in
            let (x, y) = (a[key] ?? "absent", b[key] ?? "absent")
            return x == y ? nil : "\(key) is \(y), rank 0 has \(x)"
        }
    }

    /// The leaf fields of a configuration by dotted path ("acq.pairWeight": "0.1").
    public static func fields<C: Encodable>(of configuration: C) throws -> [String: String] {
        flatten(try JSONSerialization.jsonObject(with: Data(canonicalJSON(configuration))))
    }

    /// Leaf values by dotted path.
    static func flatten(_ object: Any?, prefix: String = "") -> [String: String] {
        switch object {
        case let dict as [String: Any]:
            return dict.reduce(into: [:]) { out, item in
                out.merge(flatten(item.value, prefix: prefix.isEmpty ? item.key : "\(prefix).\(item.key)")) { $1 }
            }
        case let array as [Any]:
            return array.enumerated().reduce(into: [:]) { out, item in
                out.merge(flatten(item.element, prefix: "\(prefix)[\(item.offset)]")) { $1 }
            }
        case nil:
            return [:]
        default:
            return [prefix: "\(object!)"]
        }
    }
}
