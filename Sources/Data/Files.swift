import Foundation

enum Files {
    static func join(_ directory: String, _ name: String) -> String {
        directory.hasSuffix("/") ? directory + name : directory + "/" + name
    }

    static func exists(_ path: String) -> Bool { FileManager.default.fileExists(atPath: path) }

    /// The first of `names` present in `directory`; otherwise a missing-file error naming the
    /// first candidate, mentioning the others, and saying how to get the data.
    static func locate(_ names: [String], in directory: String, hint: String) throws -> String {
        for name in names {
            let path = join(directory, name)
            if exists(path) { return path }
        }
        let others = names.dropFirst().map { join(directory, $0) }
        let alternatives = others.isEmpty ? "" : "also tried \(others.joined(separator: ", ")); "
        throw DatasetError.missingFile(path: join(directory, names[0]), hint: alternatives + hint)
    }
}
