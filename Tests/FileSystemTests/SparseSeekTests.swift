import Metadata
import Testing
@testable import FileSystem

/// `SparseSeek` against a byte-by-byte model, for every small file, chunk layout and offset.
@Suite struct SparseSeekTests {
    @Test func matchesAByteByByteModel() {
        let chunk: Int64 = 4, enxio = FSError.noSuchAddress
        for size in Int64(0)...13 {
            let chunks = Int((size + chunk - 1) / chunk)
            for mask in 0..<(1 << chunks) {
                let data = Set((0..<chunks).filter { mask & (1 << $0) != 0 }.map(Int64.init))
                let isData = { (byte: Int64) in data.contains(byte / chunk) }
                for offset in Int64(0)...(size + 2) {
                    for whence in [SparseSeek.data, SparseSeek.hole] {
                        let expected: Result<Int64, FSError>
                        if offset >= size {
                            expected = .failure(enxio)
                        } else if whence == SparseSeek.data {
                            expected = (offset..<size).first(where: isData).map { .success($0) } ?? .failure(enxio)
                        } else {
                            expected = .success((offset..<size).first { !isData($0) } ?? size)
                        }
                        let got = Result { () throws(FSError) -> Int64 in
                            try SparseSeek.resolve(offset: offset, whence: whence, size: size, chunkSize: chunk, dataChunks: data)
                        }
                        #expect(got == expected, "size \(size) chunks \(data.sorted()) offset \(offset) whence \(whence)")
                    }
                }
            }
        }
    }

    @Test func aHugeHoleIsSteppedOver() throws {
        let chunk: Int64 = 64 << 10, far: Int64 = 1 << 33, size: Int64 = 1 << 50
        let data: Set<Int64> = [0, far]
        #expect(try SparseSeek.resolve(offset: 1, whence: SparseSeek.hole, size: size, chunkSize: chunk, dataChunks: data) == chunk)
        #expect(try SparseSeek.resolve(offset: chunk, whence: SparseSeek.data, size: size, chunkSize: chunk, dataChunks: data) == far * chunk)
        #expect(try SparseSeek.resolve(offset: far * chunk + 5, whence: SparseSeek.hole, size: size, chunkSize: chunk, dataChunks: data) == (far + 1) * chunk)
        #expect(throws: FSError.noSuchAddress) {
            try SparseSeek.resolve(offset: (far + 1) * chunk, whence: SparseSeek.data, size: size, chunkSize: chunk, dataChunks: data)
        }
    }

    @Test func refusesOtherWhenceAndNegativeOffsets() {
        #expect(throws: FSError.invalid) { try SparseSeek.resolve(offset: 0, whence: 0, size: 10, chunkSize: 4, dataChunks: []) }
        #expect(throws: FSError.invalid) { try SparseSeek.resolve(offset: -1, whence: SparseSeek.data, size: 10, chunkSize: 4, dataChunks: []) }
    }
}
