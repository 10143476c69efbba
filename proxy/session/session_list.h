// SessionList: an intrusive doubly linked list of a worker's live sessions, so the
// worker can walk them (drain, rehome, shutdown) without allocating per session.
#pragma once

#include <cstddef>

namespace sb::session {

class Session;

struct SessionLink {
    Session* prev = nullptr;
    Session* next = nullptr;
};

class SessionList {
  public:
    void push(Session* s);
    void remove(Session* s);
    Session* first() const { return head_; }
    static Session* next(const Session* s);
    size_t size() const { return size_; }
    bool empty() const { return size_ == 0; }

  private:
    Session* head_ = nullptr;
    size_t size_ = 0;
};

}  // namespace sb::session
