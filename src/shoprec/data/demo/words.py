"""The demo shop's category tree and its English and Chinese product vocabulary.

Each leaf category carries aligned English and Chinese word lists (position ``j`` of a Chinese
list translates position ``j`` of the English one), so an item keeps its meaning whichever
language its text is written in. Words are leaf-specific on purpose: a text model must find
products of one leaf similar to each other and different from other leaves.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Words:
    """Aligned word lists of one leaf in one language."""

    nouns: tuple[str, ...]
    """Product nouns (``coffee mug``); the heart of titles and queries."""
    materials: tuple[str, ...]
    """Materials or, where that makes no sense, a kind (``arabica``, ``UHS-I``)."""
    features: tuple[str, ...]
    """Short selling points (``dishwasher safe``, ``350 ml``)."""


@dataclass(frozen=True)
class Leaf:
    """A leaf category: its path, typical price, and its words in both languages."""

    path: str
    """``Top > Middle > Leaf``, the category string items carry."""
    price: float
    """Median price (EUR); item prices are log-normal around it."""
    consumable: bool
    """Bought again and again (coffee, batteries, socks): drives repeat purchases."""
    coloured: bool
    """Whether a colour belongs in its titles (a blue mug yes, blue coffee beans no)."""
    en: Words
    zh: Words

    @property
    def top(self) -> str:
        return self.path.split(" > ")[0]

    @property
    def name(self) -> str:
        return self.path.split(" > ")[-1]


def _leaf(path: str, price: float, flags: str, en: tuple[str, str, str], zh: tuple[str, str, str]) -> Leaf:
    """One leaf from ``|``-separated word lists; ``flags`` holds ``c`` (consumable) and/or ``k`` (coloured)."""

    def words(lists: tuple[str, str, str]) -> Words:
        nouns, materials, features = (tuple(s.split("|")) for s in lists)
        return Words(nouns, materials, features)

    return Leaf(path, price, "c" in flags, "k" in flags, words(en), words(zh))


# fmt: off
LEAVES: tuple[Leaf, ...] = (
    # ---------------------------------------------------------------- Home & Kitchen
    _leaf("Home & Kitchen > Kitchen > Mugs", 14, "k",
          ("mug|coffee mug|travel mug|espresso cup", "ceramic|porcelain|stoneware|enamel",
           "350 ml|dishwasher safe|microwave safe|double-walled"),
          ("马克杯|咖啡杯|随行杯|浓缩咖啡杯", "陶瓷|骨瓷|粗陶|搪瓷", "350毫升|可用洗碗机|可微波加热|双层隔热")),
    _leaf("Home & Kitchen > Kitchen > Cookware", 45, "k",
          ("frying pan|saucepan|wok|stock pot", "cast iron|stainless steel|aluminium|copper",
           "non-stick coating|induction ready|oven safe|28 cm"),
          ("平底锅|汤锅|炒锅|深汤锅", "铸铁|不锈钢|铝合金|紫铜", "不粘涂层|电磁炉适用|可进烤箱|28厘米")),
    _leaf("Home & Kitchen > Kitchen > Tea Sets", 35, "k",
          ("teapot|tea set|tea cups|gaiwan", "porcelain|glass|clay|bone china",
           "6 cups|gift box|hand painted|with infuser"),
          ("茶壶|茶具套装|茶杯|盖碗", "瓷|玻璃|紫砂|骨瓷", "六杯装|礼盒装|手绘|带滤网")),
    _leaf("Home & Kitchen > Pantry > Coffee", 12, "c",
          ("coffee beans|ground coffee|espresso blend|coffee capsules", "arabica|robusta|single origin|organic",
           "1 kg|medium roast|dark roast|fair trade"),
          ("咖啡豆|咖啡粉|意式拼配咖啡|咖啡胶囊", "阿拉比卡|罗布斯塔|单一产地|有机",
           "1公斤|中度烘焙|深度烘焙|公平贸易")),
    _leaf("Home & Kitchen > Home Fragrance > Candles", 15, "ck",
          ("scented candle|tea lights|pillar candle|candle jar", "soy wax|beeswax|paraffin|coconut wax",
           "lavender scent|vanilla scent|40 hour burn|cotton wick"),
          ("香薰蜡烛|茶蜡|柱形蜡烛|玻璃杯蜡烛", "大豆蜡|蜂蜡|石蜡|椰子蜡", "薰衣草香|香草香|燃烧40小时|棉芯")),
    _leaf("Home & Kitchen > Bedding > Pillows", 30, "k",
          ("pillow|memory foam pillow|cushion|bolster", "cotton|linen|bamboo fibre|down",
           "washable cover|hypoallergenic|50 x 70 cm|orthopedic"),
          ("枕头|记忆棉枕|靠垫|长枕", "纯棉|亚麻|竹纤维|羽绒", "可拆洗|防过敏|50x70厘米|护颈")),
    # ---------------------------------------------------------------- Electronics
    _leaf("Electronics > Cameras > Digital Cameras", 450, "k",
          ("mirrorless camera|digital camera|compact camera|action camera",
           "magnesium alloy|polycarbonate|aluminium|carbon fibre",
           "24 megapixel|4K video|optical zoom|image stabilisation"),
          ("微单相机|数码相机|卡片相机|运动相机", "镁合金|聚碳酸酯|铝合金|碳纤维", "2400万像素|4K视频|光学变焦|防抖")),
    _leaf("Electronics > Cameras > Memory Cards", 20, "",
          ("SD card|microSD card|CF card|memory card", "UHS-I|UHS-II|V30|A2",
           "128 GB|170 MB/s read|waterproof|shockproof"),
          ("SD卡|microSD卡|CF卡|存储卡", "UHS-I|UHS-II|V30|A2", "128GB|读取170MB/s|防水|防震")),
    _leaf("Electronics > Cameras > Camera Bags", 40, "k",
          ("camera bag|camera backpack|lens pouch|sling bag", "nylon|canvas|leather|polyester",
           "padded dividers|rain cover|fits 2 lenses|quick access"),
          ("相机包|相机双肩包|镜头袋|单肩摄影包", "尼龙|帆布|真皮|涤纶", "加厚隔层|附防雨罩|可放两支镜头|快取设计")),
    _leaf("Electronics > Audio > Headphones", 80, "k",
          ("wireless headphones|earbuds|over-ear headphones|sports earphones",
           "plastic|aluminium|memory foam|silicone",
           "noise cancelling|30 hour battery|Bluetooth 5.3|built-in microphone"),
          ("无线耳机|蓝牙耳塞|头戴式耳机|运动耳机", "塑料|铝合金|记忆海绵|硅胶",
           "主动降噪|30小时续航|蓝牙5.3|内置麦克风")),
    _leaf("Electronics > Accessories > Chargers", 25, "k",
          ("USB-C charger|power bank|wireless charger|charging cable", "plastic|aluminium|braided nylon|silicone",
           "65 W fast charging|10000 mAh|2 ports|1.5 m cable"),
          ("USB-C充电器|充电宝|无线充电器|充电线", "塑料|铝合金|编织尼龙|硅胶", "65W快充|10000毫安|双口|1.5米线长")),
    _leaf("Electronics > Accessories > Batteries", 10, "c",
          ("AA batteries|AAA batteries|rechargeable batteries|button cells", "alkaline|lithium|NiMH|zinc",
           "pack of 8|pack of 4|long lasting|1.5 V"),
          ("5号电池|7号电池|充电电池|纽扣电池", "碱性|锂|镍氢|锌", "8节装|4节装|持久耐用|1.5伏")),
    # ---------------------------------------------------------------- Beauty
    _leaf("Beauty > Skincare > Face Cream", 25, "c",
          ("face cream|moisturiser|night cream|eye cream", "hyaluronic acid|shea butter|aloe vera|vitamin C",
           "50 ml|for dry skin|fragrance free|SPF 15"),
          ("面霜|保湿霜|晚霜|眼霜", "玻尿酸|乳木果油|芦荟|维生素C", "50毫升|干性肌肤适用|无香精|SPF15")),
    _leaf("Beauty > Skincare > Sunscreen", 15, "c",
          ("sunscreen|sun cream|sun spray|sun stick", "mineral|zinc oxide|aloe vera|vitamin E",
           "SPF 50|water resistant|100 ml|for sensitive skin"),
          ("防晒霜|防晒乳|防晒喷雾|防晒棒", "物理防晒|氧化锌|芦荟|维生素E", "SPF50|防水防汗|100毫升|敏感肌适用")),
    _leaf("Beauty > Hair Care > Shampoo", 9, "c",
          ("shampoo|conditioner|hair mask|dry shampoo", "argan oil|coconut oil|tea tree|keratin",
           "500 ml|sulfate free|for curly hair|anti dandruff"),
          ("洗发水|护发素|发膜|干洗喷雾", "摩洛哥坚果油|椰子油|茶树|角蛋白", "500毫升|无硫酸盐|卷发适用|去屑")),
    _leaf("Beauty > Makeup > Lipstick", 18, "k",
          ("lipstick|lip gloss|lip balm|liquid lipstick", "matte|satin|cream|shimmer",
           "long lasting|moisturising|vegan|3.5 g"),
          ("口红|唇彩|润唇膏|唇釉", "哑光|缎面|滋润|珠光", "持久不脱色|保湿|纯素|3.5克")),
    _leaf("Beauty > Fragrance > Perfume", 60, "",
          ("eau de parfum|eau de toilette|body mist|perfume oil", "floral|woody|citrus|oriental",
           "50 ml|gift set|long lasting|travel size"),
          ("香水|淡香水|身体喷雾|香精油", "花香调|木质调|柑橘调|东方调", "50毫升|礼盒装|留香持久|旅行装")),
    # ---------------------------------------------------------------- Sports
    _leaf("Sports > Fitness > Yoga Mats", 30, "k",
          ("yoga mat|exercise mat|travel yoga mat|pilates mat", "TPE|natural rubber|cork|PVC",
           "non-slip|6 mm thick|with carry strap|183 x 61 cm"),
          ("瑜伽垫|健身垫|折叠瑜伽垫|普拉提垫", "TPE|天然橡胶|软木|PVC", "防滑|6毫米加厚|附背带|183x61厘米")),
    _leaf("Sports > Fitness > Dumbbells", 40, "k",
          ("dumbbell set|adjustable dumbbells|kettlebell|hand weights", "cast iron|neoprene|chrome steel|vinyl",
           "2 x 5 kg|anti-roll|quick adjust|20 kg set"),
          ("哑铃套装|可调节哑铃|壶铃|手持哑铃", "铸铁|氯丁橡胶|镀铬钢|PVC包胶",
           "2x5公斤|防滚设计|快速调节|20公斤套装")),
    _leaf("Sports > Running > Running Shoes", 90, "k",
          ("running shoes|trail running shoes|racing flats|walking shoes", "mesh|knit|synthetic|leather",
           "cushioned sole|breathable upper|reflective details|wide fit"),
          ("跑鞋|越野跑鞋|竞速跑鞋|健步鞋", "网面|针织|合成革|真皮", "缓震鞋底|透气鞋面|反光设计|宽楦")),
    _leaf("Sports > Outdoor > Water Bottles", 18, "k",
          ("water bottle|insulated bottle|sports bottle|hydration flask", "stainless steel|Tritan|glass|aluminium",
           "750 ml|BPA free|keeps cold 24 hours|leak proof"),
          ("水壶|保温杯|运动水瓶|保温壶", "不锈钢|Tritan|玻璃|铝", "750毫升|不含BPA|24小时保冷|防漏")),
    _leaf("Sports > Outdoor > Tents", 150, "k",
          ("camping tent|backpacking tent|family tent|pop-up tent", "polyester|nylon|canvas|ripstop",
           "2 person|waterproof|4 person|quick setup"),
          ("露营帐篷|徒步帐篷|家庭帐篷|速开帐篷", "涤纶|尼龙|帆布|防撕裂布", "双人|防水|四人|快速搭建")),
    # ---------------------------------------------------------------- Toys
    _leaf("Toys > Games > Board Games", 30, "",
          ("board game|card game|strategy game|party game", "cardboard|wood|plastic|linen finish",
           "2-4 players|ages 8+|family edition|60 minutes"),
          ("桌游|卡牌游戏|策略游戏|聚会游戏", "纸板|木质|塑料|亚麻纹", "2-4人|8岁以上|家庭版|60分钟")),
    _leaf("Toys > Games > Puzzles", 18, "",
          ("jigsaw puzzle|3D puzzle|puzzle box|floor puzzle", "cardboard|wood|foam|plastic",
           "1000 pieces|500 pieces|landscape motif|ages 6+"),
          ("拼图|立体拼图|益智魔盒|地板拼图", "纸板|木质|泡沫|塑料", "1000片|500片|风景图案|6岁以上")),
    _leaf("Toys > Building > Building Blocks", 45, "",
          ("building blocks|construction set|magnetic tiles|brick set", "ABS plastic|wood|magnetic|silicone",
           "500 pieces|ages 4+|compatible with major brands|storage box"),
          ("积木|拼装套装|磁力片|颗粒积木", "ABS塑料|木质|磁性|硅胶", "500颗粒|4岁以上|兼容主流品牌|附收纳盒")),
    _leaf("Toys > Plush > Stuffed Animals", 20, "k",
          ("teddy bear|plush bunny|stuffed dinosaur|plush cat", "plush|cotton|minky fabric|fleece",
           "30 cm|machine washable|extra soft|gift for kids"),
          ("泰迪熊|毛绒兔子|恐龙公仔|毛绒猫", "毛绒|纯棉|水晶超柔|摇粒绒", "30厘米|可机洗|超柔软|儿童礼物")),
    _leaf("Toys > Vehicles > Remote Control Cars", 60, "k",
          ("RC car|remote control truck|drift car|monster truck", "ABS plastic|alloy|rubber|carbon fibre",
           "2.4 GHz|30 km/h|rechargeable|all terrain"),
          ("遥控车|遥控卡车|漂移车|大脚车", "ABS塑料|合金|橡胶|碳纤维", "2.4GHz|时速30公里|可充电|全地形")),
    # ---------------------------------------------------------------- Books
    _leaf("Books > Fiction > Novels", 14, "",
          ("novel|mystery novel|romance novel|fantasy novel", "paperback|hardcover|large print|box set",
           "400 pages|first edition|signed copy|book club pick"),
          ("小说|悬疑小说|言情小说|奇幻小说", "平装|精装|大字版|套装", "400页|首版|签名本|读书会推荐")),
    _leaf("Books > Children > Picture Books", 10, "",
          ("picture book|bedtime story book|board book|activity book", "paperback|hardcover|board pages|spiral bound",
           "ages 3-6|32 pages|lift the flap|rhyming text"),
          ("绘本|睡前故事书|纸板书|活动书", "平装|精装|纸板页|线圈装", "3-6岁|32页|翻翻书|押韵文字")),
    _leaf("Books > Cooking > Cookbooks", 25, "",
          ("cookbook|baking book|vegetarian cookbook|recipe collection",
           "hardcover|paperback|spiral bound|large format",
           "100 recipes|step by step photos|quick meals|family dinners"),
          ("菜谱|烘焙书|素食菜谱|食谱合集", "精装|平装|线圈装|大开本", "100道菜|分步图解|快手菜|家常菜")),
    _leaf("Books > Travel > Travel Guides", 20, "",
          ("travel guide|city guide|hiking guide|road atlas", "paperback|pocket edition|waterproof paper|hardcover",
           "2025 edition|with maps|walking routes|insider tips"),
          ("旅行指南|城市指南|徒步指南|公路地图册", "平装|口袋版|防水纸|精装", "2025版|附地图|步行路线|当地人推荐")),
    # ---------------------------------------------------------------- Fashion
    _leaf("Fashion > Women > Dresses", 45, "k",
          ("summer dress|maxi dress|wrap dress|evening dress", "cotton|linen|silk|viscose",
           "midi length|floral print|short sleeve|with pockets"),
          ("夏季连衣裙|长裙|裹身裙|晚礼服", "纯棉|亚麻|真丝|粘胶", "中长款|碎花印花|短袖|带口袋")),
    _leaf("Fashion > Men > T-Shirts", 18, "k",
          ("t-shirt|polo shirt|crew neck tee|long sleeve shirt", "organic cotton|cotton blend|merino|bamboo",
           "regular fit|pack of 3|crew neck|pre-shrunk"),
          ("T恤|Polo衫|圆领T恤|长袖衫", "有机棉|混纺棉|美利奴羊毛|竹纤维", "常规版型|三件装|圆领|预缩处理")),
    _leaf("Fashion > Accessories > Handbags", 70, "k",
          ("handbag|tote bag|crossbody bag|clutch", "leather|vegan leather|canvas|suede",
           "zip closure|adjustable strap|inner pockets|gold hardware"),
          ("手提包|托特包|斜挎包|手拿包", "真皮|素皮|帆布|麂皮", "拉链开合|可调节肩带|内置口袋|金色五金")),
    _leaf("Fashion > Accessories > Sunglasses", 35, "k",
          ("sunglasses|aviator sunglasses|sports sunglasses|cat eye sunglasses",
           "acetate|metal|polycarbonate|titanium", "polarised lenses|UV400 protection|with case|lightweight frame"),
          ("太阳镜|飞行员墨镜|运动太阳镜|猫眼墨镜", "板材|金属|聚碳酸酯|钛", "偏光镜片|UV400防护|附眼镜盒|轻量镜框")),
    _leaf("Fashion > Basics > Socks", 8, "ck",
          ("socks|ankle socks|sports socks|wool socks", "cotton|merino wool|bamboo|polyester",
           "pack of 5|cushioned sole|breathable|one size"),
          ("袜子|船袜|运动袜|羊毛袜", "纯棉|美利奴羊毛|竹纤维|涤纶", "五双装|毛圈底|透气|均码")),
    # ---------------------------------------------------------------- Garden
    _leaf("Garden > Plants > Seeds", 5, "c",
          ("tomato seeds|herb seeds|flower seeds|lettuce seeds", "organic|heirloom|non-GMO|hybrid",
           "200 seeds|easy to grow|for balcony|high germination"),
          ("番茄种子|香草种子|花卉种子|生菜种子", "有机|传家种|非转基因|杂交", "200粒|易种植|阳台适用|高发芽率")),
    _leaf("Garden > Plants > Flower Pots", 20, "k",
          ("flower pot|planter|hanging basket|window box", "terracotta|ceramic|plastic|concrete",
           "drainage hole|with saucer|20 cm|indoor and outdoor"),
          ("花盆|种植箱|吊篮|窗台花箱", "红陶|陶瓷|塑料|水泥", "带排水孔|附托盘|20厘米|室内外两用")),
    _leaf("Garden > Tools > Garden Tools", 30, "k",
          ("pruning shears|garden trowel|hand rake|garden tool set",
           "stainless steel|carbon steel|ash wood|aluminium",
           "ergonomic grip|rust resistant|5 piece set|sharp blade"),
          ("修枝剪|园艺铲|手耙|园艺工具套装", "不锈钢|碳钢|白蜡木|铝合金", "人体工学握柄|防锈|五件套|锋利刀刃")),
    _leaf("Garden > Tools > Watering Cans", 18, "k",
          ("watering can|garden hose|spray nozzle|hose reel", "galvanised steel|plastic|brass|rubber",
           "5 litre|adjustable spray|kink free|15 m"),
          ("浇水壶|花园水管|喷枪|水管卷盘", "镀锌钢|塑料|黄铜|橡胶", "5升|可调喷雾|防缠绕|15米")),
    _leaf("Garden > Outdoor Living > Solar Lights", 25, "k",
          ("solar lights|string lights|lantern|path lights", "stainless steel|glass|plastic|rattan",
           "pack of 6|warm white|waterproof IP65|motion sensor"),
          ("太阳能灯|串灯|灯笼|草坪灯", "不锈钢|玻璃|塑料|藤编", "六只装|暖白光|IP65防水|人体感应")),
)
# fmt: on
"""Every leaf category, grouped by top category."""

TOPS: tuple[str, ...] = tuple(dict.fromkeys(leaf.top for leaf in LEAVES))
"""Top categories in tree order."""

TOP_POPULARITY: dict[str, float] = {
    "Home & Kitchen": 1.3,
    "Electronics": 1.2,
    "Beauty": 1.0,
    "Sports": 0.9,
    "Toys": 0.8,
    "Books": 0.8,
    "Fashion": 1.2,
    "Garden": 0.7,
}
"""How likely a shopper is to care about each top category."""

BRANDS: dict[str, tuple[str, ...]] = {
    "Home & Kitchen": ("Nordhaus", "Casa Verde", "Hearth & Co", "Linnea", "Kiln Works", "Maison Belle"),
    "Electronics": ("Voltix", "Lumera", "Soniq", "Pixelcraft", "Ampere", "Norvik"),
    "Beauty": ("Lumiere", "Aqualis", "Verdana Botanics", "Rosalie", "Purely", "Skinfolk"),
    "Sports": ("Stridex", "Peakline", "Aerofit", "TrailMark", "Coreflex", "Summitra"),
    "Toys": ("Playwell", "Tinker Town", "Happy Cub", "Wonderbox", "Kidzo", "Funforge"),
    "Books": ("Harbor House", "Penwright", "Inkwell Press", "Bluebird Books", "Atlas & Oak", "Maple Leaf"),
    "Fashion": ("Urbane", "Linen Lane", "Vela", "Northwind", "Solstice", "Marlowe"),
    "Garden": ("Greenthumb", "Terra Nova", "Bloomfield", "Fernwood", "Sunpatch", "Rootstock"),
}
"""Brands per top category (invented names, shared by both languages as shops do)."""

ADJECTIVES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "Home & Kitchen": (
        ("classic", "modern", "minimalist", "rustic", "elegant", "cosy"),
        ("经典", "现代", "简约", "复古", "优雅", "温馨"),
    ),
    "Electronics": (
        ("compact", "professional", "smart", "portable", "high performance", "slim"),
        ("小巧", "专业", "智能", "便携", "高性能", "轻薄"),
    ),
    "Beauty": (
        ("gentle", "nourishing", "luxurious", "natural", "lightweight", "refreshing"),
        ("温和", "滋润", "奢华", "天然", "轻盈", "清爽"),
    ),
    "Sports": (
        ("lightweight", "durable", "ergonomic", "breathable", "professional", "sturdy"),
        ("轻量", "耐用", "人体工学", "透气", "专业", "结实"),
    ),
    "Toys": (
        ("educational", "fun", "creative", "classic", "cute", "family"),
        ("益智", "趣味", "创意", "经典", "可爱", "亲子"),
    ),
    "Books": (
        ("bestselling", "gripping", "illustrated", "inspiring", "award-winning", "practical"),
        ("畅销", "扣人心弦", "插图版", "励志", "获奖", "实用"),
    ),
    "Fashion": (
        ("stylish", "casual", "elegant", "slim fit", "vintage", "everyday"),
        ("时尚", "休闲", "优雅", "修身", "复古", "百搭"),
    ),
    "Garden": (
        ("weatherproof", "sturdy", "eco-friendly", "compact", "decorative", "heavy duty"),
        ("耐候", "结实", "环保", "小巧", "装饰", "重型"),
    ),
}
"""Adjectives per top category: (English, Chinese), aligned."""

USES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "Home & Kitchen": (
        (
            "Perfect for everyday use at home.",
            "A thoughtful housewarming gift.",
            "Brings warmth to any kitchen or living room.",
        ),
        ("适合日常家居使用。", "乔迁送礼的贴心之选。", "为厨房和客厅增添温馨。"),
    ),
    "Electronics": (
        ("Built for work, travel and play.", "Backed by a two-year warranty.", "Easy to set up and use."),
        ("工作、旅行、娱乐皆宜。", "享两年质保。", "安装简单，上手容易。"),
    ),
    "Beauty": (
        ("Suitable for daily use.", "Dermatologically tested.", "Cruelty free and made in small batches."),
        ("适合日常使用。", "经皮肤科测试。", "无动物测试，小批量生产。"),
    ),
    "Sports": (
        ("Made for training, travel and the outdoors.", "Keeps up with your toughest workouts.", "Tested by athletes."),
        ("适合训练、旅行和户外。", "轻松应对高强度训练。", "经运动员实测。"),
    ),
    "Toys": (
        ("Hours of fun for the whole family.", "Encourages creativity and problem solving.", "Safety tested to EN71."),
        ("全家一起玩，乐趣无穷。", "培养创造力和动手能力。", "通过EN71安全检测。"),
    ),
    "Books": (
        (
            "A perfect gift for curious readers.",
            "Loved by readers and critics alike.",
            "Easy to read and beautifully designed.",
        ),
        ("送给爱读书的人的理想礼物。", "深受读者和评论家喜爱。", "易读且装帧精美。"),
    ),
    "Fashion": (
        ("Easy to pair with any outfit.", "Comfortable from morning to night.", "Designed in Europe, made to last."),
        ("百搭各种穿搭。", "从早到晚都舒适。", "欧洲设计，经久耐穿。"),
    ),
    "Garden": (
        (
            "Built to last through every season.",
            "Makes gardening easier and more fun.",
            "Great for balconies, patios and gardens.",
        ),
        ("四季耐用。", "让园艺更轻松有趣。", "适用于阳台、露台和花园。"),
    ),
}
"""Closing sentences of descriptions per top category: (English, Chinese), aligned."""

COLOURS: tuple[tuple[str, ...], tuple[str, ...]] = (
    ("black", "white", "grey", "navy", "red", "green", "blue", "beige", "pink", "yellow"),
    ("黑色", "白色", "灰色", "藏青色", "红色", "绿色", "蓝色", "米色", "粉色", "黄色"),
)
"""Colours (English, Chinese), aligned."""
