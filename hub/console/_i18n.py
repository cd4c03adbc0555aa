"""Vietnamese and English labels of the console (Vietnamese by default; ``?lang=en`` switches)."""

from __future__ import annotations

from collections.abc import Callable

from schemas.dossier import DossierStatus

__all__ = ["DEFAULT_LANGUAGE", "LANGUAGES", "Translator", "status_name", "translator"]

LANGUAGES = ("vi", "en")
DEFAULT_LANGUAGE = "vi"

Translator = Callable[[str], str]

#: key -> (Vietnamese, English)
_LABELS: dict[str, tuple[str, str]] = {
    "console": ("Bảng điều khiển vận hành", "Operations console"),
    "overview": ("Tổng quan", "Overview"),
    "search": ("Tra cứu", "Search"),
    "dead_letters": ("Hàng đợi lỗi (DLQ)", "Dead letters"),
    "audit": ("Nhật ký thao tác", "Audit log"),
    "logout": ("Đăng xuất", "Log out"),
    "login": ("Đăng nhập", "Log in"),
    "login_title": ("Đăng nhập bảng điều khiển", "Log in to the console"),
    "username": ("Tên đăng nhập", "User name"),
    "password": ("Mật khẩu", "Password"),
    "login_with": ("Đăng nhập bằng", "Log in with"),
    "or": ("hoặc", "or"),
    "login_failed": (
        "Tên đăng nhập hoặc mật khẩu không đúng.",
        "The user name or password is wrong.",
    ),
    "login_throttled": (
        "Đăng nhập sai quá nhiều lần; hãy thử lại sau {seconds} giây.",
        "Too many failed logins; try again in {seconds} seconds.",
    ),
    "no_accounts": (
        "Chưa có tài khoản nào. Đặt mật khẩu quản trị: chạy `hub console hash-password`, "
        "đặt kết quả vào biến môi trường HUB_CONSOLE_ADMIN_PASSWORD rồi khởi động lại hub "
        "(hoặc cấu hình đăng nhập OIDC, xem docs/console.md).",
        "No account is set up yet. Set the admin password: run `hub console hash-password`, put its output "
        "in the environment variable HUB_CONSOLE_ADMIN_PASSWORD and restart the hub "
        "(or configure an OIDC login, see docs/console.md).",
    ),
    "signed_in_as": ("Đăng nhập:", "Signed in:"),
    "role_viewer": ("người xem", "viewer"),
    "role_operator": ("vận hành viên", "operator"),
    "refreshing": ("Tự động cập nhật mỗi {seconds} giây", "Refreshes every {seconds} seconds"),
    "updated_at": ("Cập nhật lúc", "Updated at"),
    "systems": ("Hệ thống gửi", "Sending systems"),
    "system": ("Hệ thống", "System"),
    "accepted_5m": ("Nhận (5 phút)", "Accepted (5 min)"),
    "accepted_1h": ("Nhận (1 giờ)", "Accepted (1 h)"),
    "targets": ("Đích nhận", "Targets"),
    "target": ("Đích", "Target"),
    "route": ("Tuyến", "Route"),
    "health": ("Tình trạng", "Health"),
    "health_ok": ("Hoạt động", "Working"),
    "health_failing": ("Đang lỗi", "Failing"),
    "health_idle": ("Chưa có dữ liệu", "No traffic yet"),
    "last_success": ("Thành công gần nhất", "Last success"),
    "last_failure": ("Lỗi gần nhất", "Last failure"),
    "queue_depth": ("Đang chờ trong hàng đợi", "Queue depth"),
    "dlq_size": ("Số tin lỗi (DLQ)", "DLQ size"),
    "oldest_age": ("Tin chờ lâu nhất", "Oldest waiting"),
    "delivered_5m": ("Đã chuyển (5 phút)", "Delivered (5 min)"),
    "delivered_1h": ("Đã chuyển (1 giờ)", "Delivered (1 h)"),
    "failed_1h": ("Lần gửi lỗi (1 giờ)", "Failed attempts (1 h)"),
    "error_rate": ("Tỷ lệ lỗi", "Error rate"),
    "open": ("Đang xử lý", "In progress"),
    "retrying": ("Đang thử lại", "Retrying"),
    "no_circuit": (
        "Hub không có cầu dao (circuit breaker): tình trạng dựa trên lần gửi gần nhất.",
        "The hub has no circuit breaker: health is read from the latest attempts.",
    ),
    "broker_down": (
        "Không đọc được RabbitMQ; số tin trong hàng đợi không hiển thị.",
        "RabbitMQ cannot be read; queue depths are not shown.",
    ),
    "never": ("chưa bao giờ", "never"),
    "search_placeholder": ("Mã hồ sơ (MaHoSo) hoặc mã tin nhắn", "Dossier code (MaHoSo) or message id"),
    "search_button": ("Tìm", "Find"),
    "search_help": (
        "Nhập mã hồ sơ, ví dụ H15.50.05.13-261008-0975, hoặc mã tin nhắn trong câu báo lỗi.",
        "Enter a dossier code such as H15.50.05.13-261008-0975, or a message id from an error sentence.",
    ),
    "not_found": (
        "Không tìm thấy tin nhắn nào có mã hồ sơ hoặc mã tin «{q}».",
        "No message has the dossier code or message id “{q}”.",
    ),
    "dossier": ("Hồ sơ", "Dossier"),
    "dossier_timeline": ("Diễn biến hồ sơ", "Dossier timeline"),
    "message": ("Tin nhắn", "Message"),
    "messages": ("tin nhắn", "messages"),
    "type": ("Loại", "Type"),
    "source": ("Nguồn", "Source"),
    "accepted_at": ("Nhận lúc", "Accepted at"),
    "status": ("Trạng thái hồ sơ", "Dossier status"),
    "state": ("Trạng thái gửi", "Delivery state"),
    "attempts": ("Số lần gửi", "Attempts"),
    "time": ("Thời điểm", "Time"),
    "event": ("Sự kiện", "Event"),
    "detail": ("Chi tiết", "Detail"),
    "actor": ("Người thực hiện", "By"),
    "payload": ("Nội dung (đã che dữ liệu cá nhân)", "Payload (personal data masked)"),
    "replay": ("Gửi lại", "Replay"),
    "replay_all": ("Gửi lại tất cả tin khớp bộ lọc", "Replay all matching"),
    "discard": ("Hủy bỏ", "Discard"),
    "discard_reason": ("Lý do hủy (bắt buộc)", "Reason for discarding (required)"),
    "reason": ("Lý do", "Reason"),
    "reasons": ("Lý do, theo nhóm", "Reasons, grouped"),
    "count": ("Số lượng", "Count"),
    "filter": ("Lọc", "Filter"),
    "clear_filter": ("Bỏ lọc", "Clear"),
    "all": ("tất cả", "all"),
    "dossier_prefix": ("Mã hồ sơ bắt đầu bằng", "Dossier code starts with"),
    "no_dead_letters": ("Không có tin lỗi nào.", "No dead letters."),
    "shown_of": ("Hiển thị {shown} trên {total} tin.", "Showing {shown} of {total}."),
    "viewer_note": (
        "Bạn có vai trò người xem: chỉ xem, không gửi lại hay hủy được.",
        "You are a viewer: you may look, not replay or discard.",
    ),
    "confirm_replay_all": (
        "Gửi lại mọi tin lỗi khớp bộ lọc tới {target}?",
        "Replay every dead letter that matches the filter to {target}?",
    ),
    "replayed_n": ("Đã gửi lại {n} tin.", "{n} message(s) replayed."),
    "discarded": ("Đã hủy tin; lý do được ghi lại.", "Message discarded; the reason is recorded."),
    "no_operator_events": ("Chưa có thao tác nào.", "No operator action yet."),
    "forbidden": (
        "Tài khoản {user} có vai trò {role}: chỉ vận hành viên (operator) được gửi lại hoặc hủy tin. "
        "Hãy nhờ quản trị hub cấp quyền operator.",
        "Account {user} has the role {role}: only operators may replay or discard. "
        "Ask the hub's administrator for the operator role.",
    ),
    "csrf_failed": (
        "Biểu mẫu đã cũ hoặc không đến từ bảng điều khiển; hãy tải lại trang và thử lại.",
        "The form is stale or did not come from the console; reload the page and try again.",
    ),
    "language": ("English", "Tiếng Việt"),
    "deliveries": ("Trạng thái theo đích", "Delivery per target"),
    "timeline": ("Diễn biến", "Timeline"),
    "seconds_short": ("giây", "s"),
    "minutes_short": ("phút", "min"),
    "hours_short": ("giờ", "h"),
    "days_short": ("ngày", "d"),
    "ago": ("trước", "ago"),
    "actions": ("Thao tác", "Actions"),
    "store_down": (
        "Không đọc được kho tin nhắn (cơ sở dữ liệu): {error}",
        "The message store cannot be read: {error}",
    ),
    # delivery states and timeline events
    "state_pending": ("chờ xác nhận", "pending"),
    "state_accepted": ("đã nhận", "accepted"),
    "state_retrying": ("đang thử lại", "retrying"),
    "state_delivered": ("đã chuyển", "delivered"),
    "state_dead_lettered": ("lỗi (DLQ)", "dead-lettered"),
    "state_replayed": ("đã gửi lại", "replayed"),
    "state_superseded": ("bỏ qua (đã có bản mới hơn)", "superseded"),
    "state_discarded": ("đã hủy", "discarded"),
    "in_doubt": ("có thể đã tới đích", "may have arrived"),
    "in_doubt_hint": (
        "Một lần gửi có thể đã tới hệ thống đích mà hub không nhận được trả lời (hết thời gian chờ, mất kết nối): "
        "trước khi gửi lại, hub hỏi hệ thống đích xem đã có bản tin chưa, để không ghi nhận hai lần.",
        "An attempt may have reached the target without the hub getting its answer (a timeout, a dropped "
        "connection): before sending again, the hub asks the target whether it has the message, so it is not "
        "recorded twice.",
    ),
    "event_accepted": ("hub nhận tin", "accepted by the hub"),
    "event_attempt_failed": ("gửi lỗi, sẽ thử lại", "attempt failed, will retry"),
    "event_delivered": ("đã chuyển tới đích", "delivered"),
    "event_dead_lettered": ("chuyển vào hàng đợi lỗi", "dead-lettered"),
    "event_replayed": ("gửi lại từ hàng đợi lỗi", "replayed"),
    "event_replay_failed": ("gửi lại không được, vẫn ở hàng đợi lỗi", "replay failed, still dead-lettered"),
    "event_superseded": ("bỏ qua (đã có bản mới hơn)", "superseded"),
    "event_discarded": ("đã hủy", "discarded"),
}

_STATUS_EN = {
    DossierStatus.NEW: "New",
    DossierStatus.ACCEPTED: "Accepted",
    DossierStatus.REFUSED: "Refused",
    DossierStatus.PROCESSING: "Processing",
    DossierStatus.MORE_DOCUMENTS_REQUESTED: "More documents requested",
    DossierStatus.AWAITING_FEE_PAYMENT: "Awaiting fee payment",
    DossierStatus.WITHDRAWN: "Withdrawn",
    DossierStatus.SUSPENDED: "Suspended",
    DossierStatus.FINISHED: "Finished",
    DossierStatus.RESULT_RETURNED: "Result returned",
}


def translator(language: str) -> Translator:
    """``t(key)`` for one language; an unknown key is shown as itself (so a missing label is visible)."""
    index = LANGUAGES.index(language) if language in LANGUAGES else 0

    def t(key: str) -> str:
        labels = _LABELS.get(key)
        return labels[index] if labels else key

    return t


def status_name(value: object, language: str) -> str:
    """``4 – Đang xử lý`` for a TrangThaiHoSo value; the raw value when it is not a known status."""
    try:
        status = DossierStatus(int(str(value)))
    except ValueError:
        return str(value)
    name = status.label_vi if language == "vi" else _STATUS_EN[status]
    return f"{status.value} – {name}"
