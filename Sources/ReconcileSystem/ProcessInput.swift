import Foundation

/// What a child process reads on its standard input, handed over as an unlinked temporary file
/// rather than written through a pipe: a child that exits without reading (a credential helper
/// that fails at once, git refusing a folder) then cannot make the write fail with EPIPE, which
/// swift-subprocess 0.x turns into a crash ("FileDescriptor ... was not closed") instead of an error.
enum ProcessInput {
    /// A descriptor open for reading at the start of `text`; the caller hands it to the child and
    /// lets the spawn close it.
    static func file(_ text: String) throws -> Int32 {
        var template = Array((NSTemporaryDirectory() + "/reconcile-input-XXXXXX").utf8CString)
        let descriptor = template.withUnsafeMutableBufferPointer { buffer -> Int32 in
            guard let base = buffer.baseAddress else { return -1 }
            return mkstemp(base)
        }
        guard descriptor >= 0 else { throw InputError(errno: errno) }
        template.withUnsafeBufferPointer { buffer in
            if let base = buffer.baseAddress { _ = unlink(base) }
        }
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let written = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
            if written < 0 && errno == EINTR { continue }
            guard written > 0 else {
                let code = errno
                close(descriptor)
                throw InputError(errno: code)
            }
            bytes = bytes.dropFirst(written)
        }
        guard lseek(descriptor, 0, SEEK_SET) == 0 else {
            let code = errno
            close(descriptor)
            throw InputError(errno: code)
        }
        return descriptor
    }

    struct InputError: Error, CustomStringConvertible {
        let errno: Int32
        var description: String { "cannot prepare the input of a process: \(String(cString: strerror(errno)))" }
    }
}
