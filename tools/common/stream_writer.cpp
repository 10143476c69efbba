#include "common/stream_writer.h"

#include <cstring>

namespace sb::tools {

int StreamWriter::write(const void* data, size_t n) {
    uv_buf_t buf =
        uv_buf_init(static_cast<char*>(const_cast<void*>(data)), static_cast<unsigned>(n));
    return write(&buf, 1);
}

int StreamWriter::write(const uv_buf_t* bufs, unsigned count) {
    if (error_ != 0) return error_;
    if (!inflight_.empty()) {
        // A write is in flight: anything new must queue behind it to keep the order.
        append_unsent(pending_, bufs, count, 0);
        return 0;
    }
    int written = uv_try_write(stream_, bufs, count);
    if (written == UV_EAGAIN) {
        written = 0;
    } else if (written < 0) {
        error_ = written;
        return error_;
    }
    append_unsent(inflight_, bufs, count, static_cast<size_t>(written));
    if (!inflight_.empty()) start_write();
    return error_;
}

void StreamWriter::append_unsent(std::vector<char>& to, const uv_buf_t* bufs, unsigned count,
                                 size_t skip) {
    for (unsigned i = 0; i < count; ++i) {
        size_t len = bufs[i].len;
        if (skip >= len) {
            skip -= len;
            continue;
        }
        to.insert(to.end(), bufs[i].base + skip, bufs[i].base + len);
        skip = 0;
    }
}

void StreamWriter::start_write() {
    req_.data = this;
    uv_buf_t buf = uv_buf_init(inflight_.data(), static_cast<unsigned>(inflight_.size()));
    int rc = uv_write(&req_, stream_, &buf, 1, &StreamWriter::on_write);
    if (rc != 0) {
        // A failed call never runs its callback: forget the bytes and latch the error,
        // which the owner sees from its next write() or from error().
        error_ = rc;
        inflight_.clear();
        pending_.clear();
    }
}

void StreamWriter::on_write(uv_write_t* req, int status) noexcept {
    static_cast<StreamWriter*>(req->data)->handle_write(status);
}

void StreamWriter::handle_write(int status) {
    inflight_.clear();
    if (status < 0) {
        error_ = status;
        pending_.clear();
        listener_->on_write_error(status);
        return;
    }
    if (!pending_.empty()) {
        inflight_.swap(pending_);
        start_write();
        if (error_ != 0) {
            listener_->on_write_error(error_);
            return;
        }
    }
    // After a burst, give back memory that an idle connection should not keep.
    if (pending_.empty() && pending_.capacity() > kKeepCapacity) std::vector<char>().swap(pending_);
    if (inflight_.empty() && inflight_.capacity() > kKeepCapacity) {
        std::vector<char>().swap(inflight_);
    }
    if (queued() <= low_watermark_) listener_->on_write_drained();
}

void WriteBatch::add(const void* data, size_t n) {
    if (n == 0 || status_ != 0) return;
    const char* bytes = static_cast<const char*>(data);
    if (n <= kCopyLimit) {
        if (used_ + n > kCopyBytes || count_ == kMaxBufs) {
            if (flush() != 0) return;
        }
        char* at = copy_ + used_;
        std::memcpy(at, bytes, n);
        used_ += n;
        // Merge with the previous piece when it is the copy just before this one.
        if (count_ > 0 && bufs_[count_ - 1].base + bufs_[count_ - 1].len == at) {
            bufs_[count_ - 1].len += n;
        } else {
            bufs_[count_++] = uv_buf_init(at, static_cast<unsigned>(n));
        }
        return;
    }
    if (count_ == kMaxBufs && flush() != 0) return;
    bufs_[count_++] = uv_buf_init(const_cast<char*>(bytes), static_cast<unsigned>(n));
}

int WriteBatch::flush() {
    if (status_ == 0 && count_ > 0) status_ = writer_->write(bufs_, count_);
    used_ = 0;
    count_ = 0;
    return status_;
}

}  // namespace sb::tools
